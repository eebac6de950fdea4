"""Assembly of the control plane's server: the Starlette app, byte routes, lifespan and launcher."""

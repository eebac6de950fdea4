"""The web UI: a Reflex app that talks to the API through `sdk/` only.

`web.launcher` builds and serves it (`glia web`, and `glia up` beside the API); `web.app` is
the app, `web.session` the signed-in session every page shares, `web.layout` the frame and the
pieces every page uses, and `web/pages/` one module per page.
"""

"""Reflex's project file: `reflex` runs from this folder and builds into its .web/.

The folder is not a Python package on purpose: Reflex's server (Granian) resolves the app
module `web.app` by path from here, and a package around it would make that `web.web.app`.
"""

import reflex as rx

config = rx.Config(
    app_name="web",
    app_module_import="web.app",
    show_built_with_reflex=False,
    telemetry_enabled=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(appearance="inherit", accent_color="indigo", radius="medium")
        ),
        rx.plugins.SitemapPlugin(),
    ],
)

"""Console pages, one module per area; each exposes `router` (listed in web/app.py ROUTERS)."""

"""Console pages: a module per page area, a package per page group (analytics, models); each page
module exposes `router` (listed in web/app.py ROUTERS). Their messages are in web/messages, their
warm-up functions listed in warmup.py WARMERS."""

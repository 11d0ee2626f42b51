"""The web dashboard: a WSGI app (JSON API + one static page) and a small threaded server.

    from taskito.dashboard import create_app, serve
    app = create_app(queue, token="s3cret")   # any WSGI server, or mount it in Django / Flask
    serve(app, "127.0.0.1", 8080)            # or: taskito dashboard --app myapp:queue
"""

from .app import TOKEN_ENV, DashboardApp, create_app
from .server import is_loopback, make_server, serve

__all__ = ["TOKEN_ENV", "DashboardApp", "create_app", "is_loopback", "make_server", "serve"]

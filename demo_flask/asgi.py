"""The demo Flask app as an ASGI app: ``uvicorn demo_flask.asgi:app``."""

from bridge import WsgiToAsgi

from .app import app as flask_app

app = WsgiToAsgi(flask_app)

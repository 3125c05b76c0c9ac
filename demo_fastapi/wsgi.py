"""The demo FastAPI app as a WSGI app: ``gunicorn -k gthread --threads 8 demo_fastapi.wsgi:app``."""

from bridge import AsgiToWsgi

from .app import app as fastapi_app

app = AsgiToWsgi(fastapi_app)

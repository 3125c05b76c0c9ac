"""The demo FastAPI app (the legacy Flask app inside) as a WSGI app:
``gunicorn -k gthread --threads 8 demo_fastapi.wsgi:app`` (what ``scripts/demo --server gunicorn`` runs)."""

from bridge import AsgiToWsgi

from .app import app as fastapi_app

app = AsgiToWsgi(fastapi_app)

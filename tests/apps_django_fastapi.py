"""FastAPI with a Django project mounted at ``/legacy`` through ``WsgiToAsgi``: the recipe of
``docs/django-under-fastapi.md``, served by uvicorn in ``test_django_under_fastapi.py``.

``BRIDGE_DJANGO_DB`` names the SQLite file (migrated beforehand by
``python -m tests.django_legacy.migrate``). For comparison the same project is also mounted
by Django's own ASGI handler at ``/asgi-legacy``, by asgiref's ``WsgiToAsgi`` at
``/asgiref-legacy``, and at ``/noclose`` behind a broken middleware that never calls the
iterable's ``close()`` (what the tests must be able to tell from a right adapter).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_legacy.settings")

import django.contrib.admin
from asgiref.wsgi import WsgiToAsgi as AsgirefWsgiToAsgi
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from bridge import WsgiToAsgi

THREADS = 8

legacy = get_wsgi_application()  # django.setup() runs here
ADMIN_STATIC = Path(django.contrib.admin.__file__).parent / "static"

app = FastAPI()


@app.get("/api/ping")
async def ping() -> dict[str, str]:
    return {"pong": "fastapi"}


# Static files first: a mount's routes are tried in order, and /legacy would take these too.
# (Deployed: collectstatic into STATIC_ROOT, and StaticFiles(directory=STATIC_ROOT).)
app.mount("/legacy/static", StaticFiles(directory=ADMIN_STATIC), name="legacy-static")
app.mount("/legacy", WsgiToAsgi(legacy, threads=THREADS))
app.mount("/asgi-legacy", get_asgi_application())
app.mount("/asgiref-legacy", AsgirefWsgiToAsgi(legacy))


def never_closes(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """A wrong adapter's behaviour: the body is read, the iterable never closed."""
    return list(legacy(environ, start_response))


app.mount("/noclose", WsgiToAsgi(never_closes, threads=2))

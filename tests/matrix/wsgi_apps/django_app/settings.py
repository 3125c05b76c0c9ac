"""The Django project's settings: production mode, CSRF on, SQLite in ``$BRIDGE_TEST_DIR``."""

from __future__ import annotations

import os
from pathlib import Path

DEBUG = False
SECRET_KEY = "bridge-matrix-not-a-secret"
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "tests.matrix.wsgi_apps.django_app.urls"
INSTALLED_APPS = ["tests.matrix.wsgi_apps.django_app"]
MIDDLEWARE = ["django.middleware.csrf.CsrfViewMiddleware"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": Path(os.environ["BRIDGE_TEST_DIR"]) / "django.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
# /echo takes 5 MiB in request.body; Django's default refuses more than 2.5 MiB with a 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024

"""Settings of the test project. ``BRIDGE_DJANGO_DB`` is the SQLite file (in a tmp dir)."""

import os

DEBUG = False
SECRET_KEY = "bridge-tests-only-not-a-secret"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.django_legacy.urls"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "tests.django_legacy",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["BRIDGE_DJANGO_DB"],
        # Concurrent writers from several threads: WAL lets readers go on beside a writer,
        # IMMEDIATE takes the write lock at BEGIN (no deadlock upgrading a read lock), and a
        # writer waits up to 20 s for the lock instead of failing with "database is locked".
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        },
        "CONN_MAX_AGE": 0,  # the default: closed at request_finished, which close() fires
    }
}
STATIC_URL = "static/"  # relative: Django prefixes it with SCRIPT_NAME (/legacy/static/)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

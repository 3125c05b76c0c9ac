"""Django, keeping the matrix's route contract (``tests.matrix.scenarios``), as a small real
project: settings (``settings``), an app with a model (``models``, its table made by ``migrate``
at import, in a fresh SQLite file in ``$BRIDGE_TEST_DIR``), views (``views``) and a URLconf
(``urls``). Besides the contract it serves the Django-only routes that
``tests/test_matrix_django.py`` calls: the ORM, a form behind CSRF, an upload."""

from __future__ import annotations

import os

import django
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.matrix.wsgi_apps.django_app.settings")
django.setup(set_prefix=False)
call_command("migrate", run_syncdb=True, verbosity=0)

wsgi = WSGIHandler()

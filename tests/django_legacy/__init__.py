"""A small Django project the tests create (``test_django_under_fastapi.py``): a model, its
migration, the admin, auth, sessions and CSRF, served under FastAPI at ``/legacy`` by
``tests/apps_django_fastapi.py``. Only ever imported in a server subprocess (and the one that
runs ``migrate``), never in the pytest process, whose Django settings belong to
``test_wsgi_to_asgi_frameworks.py``."""

"""The conformance matrix: one scenario set, run against every framework on every server.

``scenarios.py`` is the client side and states the route contract each framework app keeps;
``servers.py`` says how each server is started; ``wsgi_apps/`` and ``asgi_apps/`` hold one app
per framework. The tests are ``tests/test_matrix_wsgi_to_asgi.py`` and
``tests/test_matrix_asgi_to_wsgi.py``.
"""

"""One WSGI app per framework, each keeping the route contract of ``tests.matrix.scenarios``."""

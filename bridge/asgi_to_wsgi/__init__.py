"""ASGI -> WSGI: ``AsgiToWsgi`` runs an ASGI application for a WSGI server.

``_adapter`` is the WSGI entry point and the response iterable, ``_app_call`` one request's ASGI
side (the app's task, ``receive()``, ``send()``), ``_loops`` the event loops and their lifetime,
``_lifespan`` the lifespan protocol on one loop, ``_path_body`` the body of an
``http.response.pathsend`` (the file, for the server's ``wsgi.file_wrapper``).
"""

from ._adapter import AsgiToWsgi

__all__ = ["AsgiToWsgi"]

"""WSGI -> ASGI: ``WsgiToAsgi`` runs a PEP 3333 application for an ASGI server.

``_adapter`` admits requests and owns the pool, ``_relay`` is a request's event-loop side and
``_response`` its worker-thread side (``start_response``, the iterable, ``wsgi.file_wrapper``).
"""

from ._adapter import WsgiToAsgi

__all__ = ["WsgiToAsgi"]

"""bridge: run WSGI apps on ASGI servers and ASGI apps on WSGI servers, correctly and in
constant memory.

``WsgiToAsgi`` wraps a PEP 3333 application for an ASGI server; ``AsgiToWsgi`` wraps an ASGI
application for a WSGI server. ``to_asgi``/``to_wsgi`` wrap only what needs wrapping.
"""

from ._aliases import ASGIMiddleware, WSGIMiddleware
from ._convert import is_asgi, is_wsgi, to_asgi, to_wsgi
from ._errors import (
    ASGIProtocolError,
    BridgeError,
    ClientDisconnected,
    RequestBodyTooLarge,
    WSGIProtocolError,
)
from .asgi_to_wsgi import AsgiToWsgi
from .wsgi_to_asgi import WsgiToAsgi

__version__ = "0.1.0"

__all__ = [
    "ASGIMiddleware",
    "ASGIProtocolError",
    "AsgiToWsgi",
    "BridgeError",
    "ClientDisconnected",
    "RequestBodyTooLarge",
    "WSGIMiddleware",
    "WSGIProtocolError",
    "WsgiToAsgi",
    "__version__",
    "is_asgi",
    "is_wsgi",
    "to_asgi",
    "to_wsgi",
]

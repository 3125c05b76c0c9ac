"""The named errors bridge raises. Each message says which rule was broken."""

from __future__ import annotations

import errno


class BridgeError(Exception):
    """Base class of every error bridge raises on its own account."""


class WSGIProtocolError(BridgeError):
    """The wrapped WSGI application broke a rule of PEP 3333."""


class ASGIProtocolError(BridgeError):
    """The wrapped ASGI application broke a rule of the ASGI HTTP spec."""


class ClientDisconnected(BridgeError, OSError):
    """The client went away; raised from ``wsgi.input`` reads and from ``send()``.

    An ``OSError`` subclass, as PEP 3333 servers and the ASGI spec (2.4) use for a lost peer,
    with ``errno`` ``ECONNRESET`` unless given: gunicorn's sync and gthread workers log an
    ``OSError`` with that errno (or ``EPIPE``, ``ENOTCONN``) at debug level, as the client's
    doing, where any other error from the app is logged with its traceback.
    """

    def __init__(self, *args: object) -> None:
        if len(args) == 1:  # ClientDisconnected("message")
            args = (errno.ECONNRESET, args[0])
        OSError.__init__(self, *args)


class RequestBodyTooLarge(BridgeError, ValueError):
    """The request body passed the adapter's ``max_body_size``."""


class RequestHeaderError(BridgeError, ValueError):
    """The request's headers break a rule bridge enforces: answered with ``400``."""

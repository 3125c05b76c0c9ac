"""The named errors bridge raises. Each message says which rule was broken."""

from __future__ import annotations

import errno


class BridgeError(Exception):
    """Base class of every error bridge raises on its own account.

    An exception of the wrapped app is never turned into one: it propagates as it is.
    """


class WSGIProtocolError(BridgeError):
    """The wrapped WSGI application broke a rule of PEP 3333; the message names the rule.

    Raised by ``WsgiToAsgi`` from ``start_response()``, ``write()`` or the ASGI call: a bad
    status line, a header that is not a ``(str, str)`` tuple or holds CR, LF or NUL, a body
    chunk that is not ``bytes``, ``start_response()`` called twice without ``exc_info``,
    body before ``start_response()``, or no ``start_response()`` at all.
    """


class ASGIProtocolError(BridgeError):
    """The wrapped ASGI application broke a rule of the ASGI spec; the message names the
    message and the rule.

    Raised by ``AsgiToWsgi``: from the app's ``send()`` for a message out of order (a body
    before ``http.response.start``, a second start, anything after the last body), of the
    wrong shape (a status that is not three digits, a body that is not bytes) or, on the
    lifespan scope, one its phase does not allow; from the WSGI call or the iterable for
    response headers that are not ``bytes`` or hold CR, LF or NUL, and for an app that
    returned before its response was complete.
    """


class ClientDisconnected(BridgeError, OSError):
    """The client went away.

    ``WsgiToAsgi`` raises it in the WSGI app's thread: from ``wsgi.input`` reads, and from
    ``write()`` or the next chunk of the response once the client left or ``timeout`` passed.
    ``AsgiToWsgi`` raises it from the app's ``send()`` once the server closed the response, and
    from the WSGI call or iterable when the client sent less than its ``Content-Length``.

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
    """The request body passed the adapter's ``max_body_size``.

    Raised by ``WsgiToAsgi`` from ``wsgi.input`` reads when a streamed body (one longer than
    ``hold_body``) passes the limit; whatever the app makes of it, the client gets ``413``
    while no response has started. A ``ValueError`` subclass, as a bad input is.
    """


class RequestHeaderError(BridgeError, ValueError):
    """The request's headers break a rule bridge enforces: answered with ``400``."""

"""The implementations the conformance checks run against, and the one mark that records, per
check, which of them break its rule.

``check(W2A, "title", a2wsgi="reason")`` parametrizes a test over every implementation of the
direction (argument ``make``: a factory ``make(app, **options)``) and makes the named ones a
strict xfail with that reason: if a peer fixes the rule, its mark has to go, so the table in
``docs/conformance.md`` (rendered from these marks by ``scripts/conformance``) stays true.

A check that needs an option a peer does not have passes the option anyway; the peer's
constructor refuses it with ``TypeError``, and ``no_option(name)`` is the mark for that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from a2wsgi import ASGIMiddleware as A2wsgiAsgiToWsgi
from a2wsgi import WSGIMiddleware as A2wsgiWsgiToAsgi
from asgiref.wsgi import WsgiToAsgi as AsgirefWsgiToAsgi

from bridge import AsgiToWsgi, WsgiToAsgi

W2A = "WSGI → ASGI"
A2W = "ASGI → WSGI"
Factory = Callable[..., Any]
F = TypeVar("F", bound=Callable[..., Any])


def _bridge_asgi_to_wsgi(app: Any, **options: Any) -> AsgiToWsgi:
    # Hand-written check apps ignore the lifespan scope; a lifespan check asks for it.
    return AsgiToWsgi(app, **{"lifespan": "off", **options})


def _bridge_shared_loop(app: Any, **options: Any) -> AsgiToWsgi:
    return _bridge_asgi_to_wsgi(app, loop="shared", **options)


# Per direction: column id -> factory. An implementation missing from a direction is a dash in the table.
IMPLEMENTATIONS: dict[str, dict[str, Factory]] = {
    W2A: {"bridge": WsgiToAsgi, "a2wsgi": A2wsgiWsgiToAsgi, "asgiref": AsgirefWsgiToAsgi},
    A2W: {
        "bridge": _bridge_asgi_to_wsgi,
        "bridge_shared": _bridge_shared_loop,
        "a2wsgi": A2wsgiAsgiToWsgi,
    },
}
# Column id -> (heading, distribution whose version the table names, or None for bridge).
COLUMNS: dict[str, tuple[str, str | None]] = {
    "bridge": ("bridge", None),
    "bridge_shared": ('bridge `loop="shared"`', None),
    "a2wsgi": ("a2wsgi", "a2wsgi"),
    "asgiref": ("asgiref", "asgiref"),
}
# What each peer offers in a direction where it has no adapter at all.
ABSENT = {(A2W, "asgiref"): "asgiref has no ASGI → WSGI adapter"}


@dataclass(frozen=True)
class Broken:
    """Why an implementation fails a check; ``raises`` narrows the xfail to that error."""

    reason: str
    raises: type[BaseException] | None = None


def no_option(name: str) -> Broken:
    return Broken(f"no such option: `{name}` (its constructor raises TypeError)", TypeError)


def check(direction: str, title: str, **broken: str | Broken) -> Callable[[F], F]:
    """Run the test against each implementation of ``direction``; ``title`` is its table row."""
    parametrize = over_peers(direction, broken=broken)

    def decorate(test: F) -> F:
        marked = pytest.mark.conformance(direction=direction, title=title)(parametrize(test))
        return marked  # type: ignore[no-any-return]

    return decorate


def over_peers(
    direction: str,
    *,
    argname: str = "make",
    only: tuple[str, ...] | None = None,
    broken: Mapping[str, str | Broken] | None = None,
) -> Callable[[F], F]:
    """Parametrize ``argname`` over the implementations of ``direction`` (or ``only`` those), the
    ``broken`` ones (name -> why) a strict xfail; without a table row (``check`` adds one)."""
    broken = broken or {}
    implementations = IMPLEMENTATIONS[direction]
    names = tuple(implementations) if only is None else only
    unknown = set(names) - set(implementations) | set(broken) - set(names)
    if unknown:
        raise ValueError(f"no {direction} implementation named {sorted(unknown)} here")
    params = []
    for name in names:
        why = broken.get(name)
        if isinstance(why, str):
            why = Broken(why)
        marks = [] if why is None else [expected_failure(why)]
        params.append(pytest.param(implementations[name], id=name, marks=marks))
    return pytest.mark.parametrize(argname, params)


def expected_failure(why: Broken) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=why.reason, raises=why.raises)

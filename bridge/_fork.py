"""Objects that start afresh in a forked child (gunicorn ``--preload``, uWSGI).

A child gets copies of the parent's counts, locks and pool handles but none of its threads. An
object registered here is reset in the child right after the fork, before the child runs
anything else, so no request path has to check which process it is in.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_RESETS: weakref.WeakKeyDictionary[Any, Callable[[Any], None]] = weakref.WeakKeyDictionary()


def reset_after_fork(obj: T, reset: Callable[[T], None]) -> None:
    """Call ``reset(obj)`` in every forked child while ``obj`` lives. ``reset`` must not hold
    ``obj`` (pass the class's function, ``Lane._reset``, not the bound method)."""
    _RESETS[obj] = reset


def _in_child() -> None:
    for obj, reset in list(_RESETS.items()):
        reset(obj)


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_in_child)

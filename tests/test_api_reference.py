"""``docs/api.md`` stays true to the code, and the code keeps documenting itself.

The reference is rendered in-process from the signatures and docstrings (no server, no
subprocess), so a changed docstring or signature fails here until ``scripts/api-reference`` is
run. The other tests hold the docstrings to what the reference needs: every public name has
one, every constructor keyword is described in its ``Args:`` (a new option cannot land
undocumented, nor a removed one stay described), every ``Stats`` key in ``Keys:``.
"""

from __future__ import annotations

import inspect
import typing

import pytest

import bridge
from bridge.prometheus import StatsCollector
from tests import api_reference
from tests.api_reference import DOC, Stats, anchor, documented, heading_of, own_doc

pytestmark = pytest.mark.timeout(30)

PUBLIC = sorted(name for name in bridge.__all__ if name != "__version__")
CONSTRUCTORS = {
    "WsgiToAsgi": bridge.WsgiToAsgi,
    "AsgiToWsgi": bridge.AsgiToWsgi,
    "WSGIMiddleware": bridge.WSGIMiddleware,
    "ASGIMiddleware": bridge.ASGIMiddleware,
    "StatsCollector": StatsCollector,
}


def test_the_committed_reference_is_the_rendered_one() -> None:
    committed = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert committed == api_reference.render(), (
        "docs/api.md is stale: run scripts/api-reference and commit the result"
    )


def test_rendering_is_deterministic() -> None:
    text = api_reference.render()
    assert text == api_reference.render()
    assert " at 0x" not in text and "object>" not in text, "a repr of an object leaked in"


@pytest.mark.parametrize("name", [*PUBLIC, "StatsCollector"])
def test_each_public_name_has_a_docstring_and_a_section(name: str) -> None:
    obj = StatsCollector if name == "StatsCollector" else getattr(bridge, name)
    assert own_doc(obj), f"{name} has no docstring of its own"
    entry = next(e for e in api_reference.entries() if e.obj is obj)
    heading = heading_of(entry)
    text = api_reference.render()
    assert f"\n### `{heading}`\n" in text, f"no section for {name}"
    assert f"(#{anchor(heading)})" in text, f"{name} is not in the table of contents"


@pytest.mark.parametrize("cls", [bridge.WsgiToAsgi, bridge.AsgiToWsgi, StatsCollector])
def test_each_public_method_has_a_docstring(cls: type) -> None:
    methods = api_reference.public_methods(cls)
    assert methods, f"{cls.__name__} shows no methods"
    missing = [name for name, method in methods if name != "__init__" and not own_doc(method)]
    assert not missing, f"{cls.__name__} methods without a docstring: {missing}"


@pytest.mark.parametrize("name", list(CONSTRUCTORS))
def test_every_constructor_parameter_is_described(name: str) -> None:
    cls = CONSTRUCTORS[name]
    parameters = [p for p in inspect.signature(cls).parameters if p != "self"]
    described = documented(cls)
    assert described == [p for p in described if p in parameters], (
        f"{name}'s docstring describes parameters it does not take: "
        f"{sorted(set(described) - set(parameters))}"
    )
    missing = [p for p in parameters if p not in described]
    assert not missing, f"{name}'s docstring (Args:) does not describe {missing}"


def test_every_stats_key_is_described() -> None:
    keys = list(typing.get_type_hints(Stats))
    described = documented(Stats, "Keys")
    assert keys, "Stats has no keys"
    assert described == keys, "Stats' docstring (Keys:) must describe each key, in order"
    rendered = api_reference.render()
    assert all(f"| `{key}` | " in rendered for key in keys)


def test_a_parameter_left_out_of_args_is_caught() -> None:
    """The check above can fail: the parser sees a parameter go missing from ``Args:``."""
    doc = own_doc(bridge.WsgiToAsgi)
    assert api_reference.parse(doc).sections["Args"][-1][0] == "hold_body"
    cut = "\n".join(line for line in doc.splitlines() if not line.startswith("    hold_body:"))
    terms = [term for term, _ in api_reference.parse(cut).sections["Args"]]
    assert "hold_body" not in terms and "threads" in terms


def test_defaults_read_as_the_code_writes_them() -> None:
    line = api_reference.signature("WsgiToAsgi", bridge.WsgiToAsgi.__init__, constructor=True)
    assert "hold_body: int = HOLD_BODY" in line and "threads: int = DEFAULT_THREADS" in line
    assert "self" not in line and "-> None" not in line
    assert ("HOLD_BODY", "1048576") in api_reference.constants(bridge.WsgiToAsgi.__init__)
    line = api_reference.signature("AsgiToWsgi", bridge.AsgiToWsgi.__init__, constructor=True)
    assert 'loop: str | asyncio.AbstractEventLoop = "per-thread"' in line

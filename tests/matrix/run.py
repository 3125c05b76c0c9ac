"""The matrix's machinery: a case per (framework, server, scenario), each marked with what is
known about it (a skip or a strict xfail, always with its reason), and one server at a time kept
running for all the cases of its pair."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.matrix.scenarios import SCENARIOS, Target, write_file
from tests.matrix.servers import ServerSpec
from tests.servers import Server, serve

ANY = "*"
# (framework, server, scenario), each of them a name or ANY -> a skip or an xfail with its reason
Known = Mapping[tuple[str, str, str], pytest.MarkDecorator]


def skip(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.skip(reason=reason)


def server_bug(reason: str) -> pytest.MarkDecorator:
    """The pair fails because of the server, not bridge: it must go on failing (strict)."""
    return pytest.mark.xfail(reason=reason, strict=True)


REFUSES_NON_ASCII_TARGET = skip(
    "the server answers 400 to bytes outside ASCII in the request-target (RFC 9112 allows only"
    " ASCII there): the request never reaches bridge"
)


def cases(frameworks: list[str], servers: list[str], known: Known) -> list[object]:
    """Every case, pair after pair, so that one server serves its pair's cases in a row."""
    params = []
    for framework in frameworks:
        for server in servers:
            for scenario in SCENARIOS:
                marks = [
                    mark
                    for (f, s, c), mark in known.items()
                    if f in (framework, ANY) and s in (server, ANY) and c in (scenario, ANY)
                ]
                params.append(
                    pytest.param(
                        framework,
                        server,
                        scenario,
                        marks=marks,
                        id=f"{framework}-{server}-{scenario}",
                    )
                )
    return params


@dataclass
class Running:
    pair: tuple[str, str]
    server: Server
    shared_dir: Path
    context: Iterator[Server]


class OneServerAtATime:
    """Starts the server of the pair a case asks for, stopping the previous pair's first."""

    def __init__(self, specs: Mapping[str, ServerSpec], tmp: pytest.TempPathFactory) -> None:
        self.specs = specs
        self.tmp = tmp
        self.running: Running | None = None

    def target(self, framework: str, server: str, scenario: str) -> Target:
        if self.running is None or self.running.pair != (framework, server):
            self.stop()
            shared_dir = self.tmp.mktemp(f"{framework}-{server}")
            write_file(shared_dir)
            env = {"BRIDGE_TEST_DIR": str(shared_dir), "BRIDGE_MATRIX_APP": framework}
            context = serve(list(self.specs[server].argv), env=env, timeout=30)
            started = context.__enter__()
            self.running = Running((framework, server), started, shared_dir, context)
        name = f"{framework}_{server}_{scenario}".replace("-", "_")
        prefix = self.specs[server].prefix
        return Target(self.running.server.port, prefix, self.running.shared_dir, name)

    def log(self) -> str:
        return self.running.server.log() if self.running else ""

    def stop(self) -> None:
        if self.running is not None:
            running, self.running = self.running, None
            running.context.__exit__(None, None, None)


def servers_fixture(
    specs: Mapping[str, ServerSpec],
) -> Callable[[pytest.TempPathFactory], Iterator[OneServerAtATime]]:
    """A module's ``servers`` fixture: its pairs' servers, one at a time."""

    @pytest.fixture(scope="module")
    def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OneServerAtATime]:
        running = OneServerAtATime(specs, tmp_path_factory)
        yield running
        running.stop()

    return servers


def run_case(servers: OneServerAtATime, framework: str, server: str, scenario: str) -> None:
    target = servers.target(framework, server, scenario)
    try:
        SCENARIOS[scenario](target)
    except BaseException:
        print(servers.log()[-4000:])  # the server's side of the failure, in the report
        raise

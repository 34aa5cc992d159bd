"""hcops.policy.engines.opa_stage: the groups of packages, the staged module, the sink's bookkeeping
(against a fake server; tests/integration/test_policy_engines.py runs the real one)."""

from __future__ import annotations

import sys
import threading
from typing import Any

from hcops.policy.engines.base import analyse
from hcops.policy.engines.opa_stage import (
    STAGE_ROOT,
    Stager,
    package_groups,
    staged_module,
)
from hcops.policy.sources import RESERVED_ROOTS, builtin_policy_dir, collect_policies, modules_of


def pack() -> dict[str, str]:
    """The built-in pack's gate modules."""
    return modules_of(collect_policies([], builtin_dir=builtin_policy_dir()))


def test_groups_cover_every_package_once_and_balance_the_source() -> None:
    modules = pack()
    analysis = analyse(modules)
    groups = package_groups(modules, analysis)
    assert len(groups) == 2
    assert sorted(n for g in groups for n in g) == sorted(analysis.packages)
    weight = [sum(len(src) for f, src in modules.items()
                  if any(i.filename == f and i.package_name in g for i in analysis.infos)) for g in groups]
    assert max(weight) <= 2 * min(weight)
    assert package_groups(modules, analysis) == groups  # the same every time
    one = {"p.rego": "package p\n\ndeny contains 1 if true\n"}
    assert package_groups(one, analyse(one)) == [["p"]]


def test_the_staged_module_asks_every_group_on_the_staged_document() -> None:
    modules = pack()
    analysis = analyse(modules)
    groups = package_groups(modules, analysis)
    text = staged_module(analysis, "abc", groups)
    assert 'pack := "abc"' in text
    for g in range(len(groups)):
        assert f"x := group_{g} with input as data.{STAGE_ROOT}" in text
    assert all(f'"{name}": {{' in text for name in analysis.packages)
    assert STAGE_ROOT in RESERVED_ROOTS and "hcops_engine_staged" in RESERVED_ROOTS


class FakeServer:
    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.puts: list[tuple[str, bytes]] = []
        self.gate = threading.Event()
        self.gate.set()

    def wait_ready(self, timeout: float) -> None:
        self.gate.wait(timeout)

    def request(self, method: str, path: str, body: bytes | None, timeout: float) -> tuple[int, Any]:
        assert method == "PUT" and body is not None
        self.puts.append((path, body))
        return self.status, None


def test_the_sink_holds_the_document_it_was_given_once_every_part_arrived() -> None:
    server = FakeServer()
    stager = Stager(server, 5.0)
    before = sys.getswitchinterval()
    doc: dict[str, Any] = {"a": 1, "nodes": [1], "manifests": {"docker/x": {"k": "v"}}}
    stager.part((), {"a": 1, "manifests": {}})
    stager.part(("nodes",), doc["nodes"])
    stager.part(("manifests", "docker/x"), doc["manifests"]["docker/x"])
    assert not stager.holds(doc)  # not told it is done yet
    stager.done(doc)
    assert not stager.holds(dict(doc))  # an equal document is not the one built
    assert stager.holds(doc)
    assert sys.getswitchinterval() == before
    assert [p for p, _ in server.puts] == [f"/v1/data/{STAGE_ROOT}", f"/v1/data/{STAGE_ROOT}/nodes",
                                           f"/v1/data/{STAGE_ROOT}/manifests/docker%2Fx"]
    stager.close()


def test_a_part_that_did_not_arrive_sends_the_document_in_the_request() -> None:
    stager = Stager(FakeServer(status=400), 5.0)
    doc: dict[str, Any] = {"a": 1}
    stager.part((), doc)
    stager.done(doc)
    assert not stager.holds(doc)
    stager.close()
    unserializable = Stager(FakeServer(), 5.0)
    bad: dict[str, Any] = {"a": {1: 2}}  # not JSON: the request's serialization reports it
    unserializable.part((), bad)
    unserializable.done(bad)
    assert not unserializable.holds(bad)
    unserializable.close()


def test_a_new_document_replaces_the_staged_one_and_close_restores_the_interpreter() -> None:
    server = FakeServer()
    stager = Stager(server, 5.0)
    before = sys.getswitchinterval()
    first: dict[str, Any] = {"a": 1}
    stager.part((), first)
    stager.done(first)
    second: dict[str, Any] = {"a": 2}
    stager.part((), second)  # a second build: the first document is no longer what the server holds
    assert not stager.holds(first)
    assert sys.getswitchinterval() == before  # asked for another document: the build is over
    stager.part((), second)
    stager.close()
    assert sys.getswitchinterval() == before
    assert not stager.holds(second)

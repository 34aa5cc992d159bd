"""Fixtures for the policy engine tests: a miniature policy pack and inputs for it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hcops.errors import Location

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PACK = FIXTURES / "pack"
USER = FIXTURES / "user"
UNSUPPORTED = FIXTURES / "unsupported"
SELFTEST = FIXTURES / "selftest"
SPEC_FILE = "network.yaml"


def node(name: str, org: str, index: tuple[int, int], *, power: int = 10,
         encrypted: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "org": org,
        "role": "validator" if power else "observer",
        "power": power,
        "path": f"spec.organizations[{index[0]}].nodes[{index[1]}]",
        "storage": {"size": "10Gi", "encrypted": encrypted},
    }


COMPLIANT: dict[str, Any] = {
    "apiVersion": "hcops/v1alpha1",
    "kind": "Consortium",
    "metadata": {"name": "fixture-net"},
    "environment": "prod",
    "spec": {"network": {"rpc": {"exposure": "internal"}}},
    "nodes": [
        node("a-val-0", "org-a", (0, 0)),
        node("b-val-0", "org-b", (1, 0)),
        node("c-val-0", "org-c", (2, 0)),
        node("d-val-0", "org-d", (3, 0)),
    ],
}


@pytest.fixture
def compliant() -> dict[str, Any]:
    """An input the fixture pack accepts without findings."""
    return copy.deepcopy(COMPLIANT)


@pytest.fixture
def violating() -> dict[str, Any]:
    """Public RPC (deny), two unencrypted nodes (deny) and one node with most of the power (warn)."""
    doc = copy.deepcopy(COMPLIANT)
    doc["spec"]["network"]["rpc"]["exposure"] = "public"
    doc["nodes"][1]["storage"]["encrypted"] = False
    doc["nodes"][2]["storage"]["encrypted"] = False
    doc["nodes"][3]["power"] = 100
    return doc


# Where each spec field was written in the (imaginary) spec file.
SPEC_LINES: dict[str, Location] = {
    "spec": Location(SPEC_FILE, 5, 1),
    "spec.network.rpc": Location(SPEC_FILE, 8, 5),
    "spec.network.rpc.exposure": Location(SPEC_FILE, 9, 7),
    "spec.organizations[1].nodes[0]": Location(SPEC_FILE, 20, 9),
    "spec.organizations[3].nodes[0].power": Location(SPEC_FILE, 40, 11),
}


@pytest.fixture
def locate() -> Callable[[str], Location | None]:
    return SPEC_LINES.get


def many_nodes(count: int) -> dict[str, Any]:
    """A lean input with ``count`` compliant nodes spread over 10 organizations."""
    doc = copy.deepcopy(COMPLIANT)
    doc["nodes"] = [node(f"n-{i}", f"org-{i % 10}", (i % 10, i // 10)) for i in range(count)]
    return doc

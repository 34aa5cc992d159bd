"""The policy gate in front of a real Docker engine: `hcops apply` of a non-compliant copy of the example
refuses before anything exists; `hcops check` as a subprocess gives the documented exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.providers import docker_support
from tests.providers.docker_support import TestNetwork

pytestmark = pytest.mark.integration

LEAKY = "  data: {phiOnChain: allowed}"


def test_apply_refuses_a_non_compliant_network_without_touching_docker(
    make_network: Callable[..., TestNetwork], docker_engine: Any
) -> None:
    net = make_network("gate")
    net.write(data=LEAKY)
    proc = net.hcops("apply", "--yes", timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "HC-PHI1-PHI-ON-CHAIN" in proc.stdout
    assert "refused" in proc.stderr and "Traceback" not in proc.stderr
    assert docker_support.leftovers(docker_engine, net.name) == []
    label = {"label": f"{docker_support.LABEL}={net.name}"}
    assert docker_engine.containers.list(all=True, filters=label) == []
    assert docker_engine.networks.list(filters=label) == []


def test_check_subprocess_exit_codes(make_network: Callable[..., TestNetwork]) -> None:
    net = make_network("check")
    ok = net.hcops("check", "--format", "json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["passed"] is True

    net.write(data=LEAKY)
    bad = net.hcops("check", "--format", "json")
    assert bad.returncode == 1
    assert any(f["id"] == "HC-PHI1-PHI-ON-CHAIN" for f in json.loads(bad.stdout)["findings"])

    broken = subprocess.run([sys.executable, "-m", "hcops", "check", *net.args(), "--policy", str(net.root / "p")],
                            capture_output=True, text=True, cwd=net.root)
    assert broken.returncode == 2  # not a directory

"""Each environment problem gives a one-line error naming the cause and what to do, an exit code of 1 or 2,
no traceback, and (when caught before apply starts) nothing created."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from filelock import FileLock

from tests.providers import docker_support
from tests.providers.docker_support import IMAGE, TestNetwork

pytestmark = pytest.mark.integration


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    assert "hint: " in proc.stderr
    return errors[0]


def test_engine_not_running(make_network: Callable[..., TestNetwork],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    net = make_network("down")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{net.root}/no-such-docker.sock")
    for command in (("plan",), ("apply", "--yes"), ("status",), ("destroy",)):
        assert_one_line_error(net.hcops(*command), 2, "Docker engine is not running", "DOCKER_HOST")


def test_port_taken(make_network: Callable[..., TestNetwork], docker_engine: Any) -> None:
    net = make_network("port")
    with socket.socket() as s:
        s.bind(("127.0.0.1", net.port_base + 2))
        s.listen()
        proc = net.hcops("apply", "--yes")
    assert_one_line_error(proc, 2, f"127.0.0.1:{net.port_base + 2}", "bluecross-val-0", "already taken",
                          "rpcHostPortBase")
    assert docker_support.leftovers(docker_engine, net.name) == []


def test_name_conflict_with_a_foreign_container(make_network: Callable[..., TestNetwork],
                                                docker_engine: Any) -> None:
    net = make_network("conflict")
    foreign = docker_engine.containers.create(IMAGE, name=f"{net.name}-northside-val-0", command=["version"])
    try:
        proc = net.hcops("apply", "--yes")
        assert_one_line_error(proc, 2, f"a container named {foreign.name} exists",
                              "was not created by hcops")
        assert docker_support.leftovers(docker_engine, net.name) == []
    finally:
        foreign.remove(force=True)


def test_missing_image_names_it_and_how_to_build_it(make_network: Callable[..., TestNetwork],
                                                    docker_engine: Any) -> None:
    net = make_network("noimage")
    net.write(image="  organizations:\n    - name: cityrx-pharmacy\n      nodes:\n"
                    "        - {name: cityrx-val-0, image: 'hcops-test/absent:0.0.1'}")
    proc = net.hcops("apply", "--yes")
    assert_one_line_error(proc, 2, "image hcops-test/absent:0.0.1 is not in the Docker engine",
                          "scripts/bootstrap image")
    assert docker_support.leftovers(docker_engine, net.name) == []


def test_concurrent_apply_waits_then_fails_clearly(make_network: Callable[..., TestNetwork]) -> None:
    net = make_network("lock")
    folder = net.state_dir / net.name
    folder.mkdir(parents=True, mode=0o700)  # the state folder's own rule: key material only in 0700 folders
    folder.parent.chmod(0o700)
    with FileLock(str(folder / ".lock")):
        started = time.monotonic()
        proc = net.hcops("apply", "--yes", "--lock-timeout", "1.5")
        waited = time.monotonic() - started
        assert_one_line_error(proc, 2, f"network {net.name} is locked by another hcops apply/destroy")
        assert 1.5 <= waited < 30
        assert_one_line_error(net.hcops("destroy", "--lock-timeout", "0"), 2, "is locked")


def test_a_crashing_node_fails_apply_fast_with_its_logs(make_network: Callable[..., TestNetwork]) -> None:
    net = make_network("crash")
    net.write(resources="  defaults:\n    resources: {cpu: '500m', memory: 6Mi}")
    started = time.monotonic()
    proc = net.hcops("apply", "--yes", "--timeout", "90")
    took = time.monotonic() - started
    line = assert_one_line_error(proc, 1, "docker logs" if "last log lines" not in proc.stderr else "")
    assert "crash-looping" in line or "exited" in line, proc.stderr
    assert took < 60, f"apply took {took:.0f} s to notice a crash-looping node"

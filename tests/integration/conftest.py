"""Fixtures for tests against the real Docker engine and node image (fail under CI=true when missing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.providers import docker_support
from tests.providers.docker_support import TestNetwork


@pytest.fixture(scope="session")
def docker_engine() -> Any:
    """A client of the running engine, which has the node image."""
    return docker_support.docker_client()


@pytest.fixture
def make_network(docker_engine: Any, tmp_path: Path) -> Iterator[Callable[..., TestNetwork]]:
    """Factory of test copies of the example consortium; everything they create is removed afterwards."""
    made: list[TestNetwork] = []

    def make(tag: str = "net", nodes: int = 5) -> TestNetwork:
        net = docker_support.new_network(docker_engine, tmp_path / f"{tag}-{len(made)}", tag, nodes)
        made.append(net)
        return net

    yield make
    for net in made:
        docker_support.cleanup(docker_engine, net.name)


@pytest.fixture(scope="module")
def module_network(docker_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNetwork]:
    """One network shared by the ordered steps of a module; removed at the end, even on failure."""
    net = docker_support.new_network(docker_engine, tmp_path_factory.mktemp("net"), "e2e")
    try:
        yield net
    finally:
        docker_support.cleanup(docker_engine, net.name)

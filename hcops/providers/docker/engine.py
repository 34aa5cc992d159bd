"""The Docker engine client and the translation of its failures into one-line hcops errors."""

from __future__ import annotations

import contextlib
import errno
import re
import socket
from collections.abc import Iterator

import docker
import docker.errors
import requests.exceptions

from hcops.errors import EnvironmentProblem, HcopsError

POOL_SIZE = 24  # connections kept to the engine: the inventory's requests all go out at once
BUILD_HINT = "build it locally with `scripts/bootstrap image` (or `docker load` it)"


def connect(timeout: float = 60.0) -> docker.DockerClient:
    """A client of the engine named by DOCKER_HOST (default: the local socket), checked with a ping."""
    try:
        client = docker.from_env(timeout=int(timeout), max_pool_size=POOL_SIZE)
        if client.api.base_url.startswith("http+docker://"):
            # A local socket has no proxy: without this, every request scans the environment for one
            # (a fifth of a 32-node sweep's CPU).
            client.api.trust_env = False
        client.ping()
    except docker.errors.DockerException as exc:
        raise _connect_error(exc) from None
    except requests.exceptions.RequestException as exc:
        raise _connect_error(exc) from None
    return client


def _connect_error(exc: BaseException) -> EnvironmentProblem:
    text = str(exc)
    if isinstance(exc.__context__, PermissionError) or "Permission denied" in text \
            or "PermissionError" in text:
        return EnvironmentProblem(
            "permission denied on the Docker socket",
            hint="run as a user in the `docker` group (or root), "
                 "or point DOCKER_HOST at an engine you may use")
    return EnvironmentProblem(
        "the Docker engine is not running or not reachable" + _short(text),
        hint="start it (`scripts/bootstrap docker`, or `systemctl start docker`) or set DOCKER_HOST")


def _short(text: str) -> str:
    m = re.search(r"(Connection refused|No such file or directory|timed out|Connection aborted)", text)
    return f" ({m.group(1).lower()})" if m else ""


_PORT_TAKEN = re.compile(r"(?:\[::\]|[\d.]+):(\d+).*?(?:address already in use|port is already allocated)"
                         r"|Bind for [\d.:]*?:(\d+) failed: port is already allocated")


def translate(exc: docker.errors.DockerException | requests.exceptions.RequestException,
              doing: str) -> HcopsError:
    """An engine failure while ``doing`` something, as a one-line error with a hint."""
    if isinstance(exc, requests.exceptions.RequestException) and not isinstance(exc, docker.errors.APIError):
        return _connect_error(exc)
    text = getattr(exc, "explanation", None) or str(exc)
    text = str(text)
    m = _PORT_TAKEN.search(text)
    if m:
        port = m.group(1) or m.group(2)
        return EnvironmentProblem(f"{doing}: host port {port} is already taken",
                                  hint="stop whatever listens there, "
                                       "or change spec.provider.docker.rpcHostPortBase")
    if "Pool overlaps" in text or "overlaps with other one" in text:
        return EnvironmentProblem(f"{doing}: the subnet overlaps an existing Docker network",
                                  hint="set spec.provider.docker.subnet to a free range")
    if "is already in use by container" in text or "Conflict" in text:
        return EnvironmentProblem(f"{doing}: name conflict ({_first_line(text)})",
                                  hint="remove or rename the other object, or change metadata.name")
    if isinstance(exc, docker.errors.ImageNotFound):
        return EnvironmentProblem(f"{doing}: image not found ({_first_line(text)})", hint=BUILD_HINT)
    return EnvironmentProblem(f"{doing}: {_first_line(text)}")


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown engine error"
    return line[:300]


@contextlib.contextmanager
def engine_errors(doing: str) -> Iterator[None]:
    """Wrap engine calls: any engine error becomes a one-line ``HcopsError`` about ``doing``."""
    try:
        yield
    except HcopsError:
        raise
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise translate(exc, doing) from None


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host:port`` can be bound right now (nothing else listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True

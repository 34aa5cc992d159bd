"""SSH local forwards from this machine to each host's CometBFT RPC.

On a bare host the RPC listens where ``spec.network.rpc.exposure`` says, often on the host's loopback only
(``host``, ``internal``), and the firewall keeps everyone else out. hcops reads it the way an operator
would: through SSH, with the connection settings Ansible uses (user, key, known hosts; no prompt ever), so
readiness and audit need no port opened for them. One ``ssh -N -L`` process per host, for the duration
of one wait or one observation.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from hcops.plan.cometbft import RPC_PORT
from hcops.providers.ansible.workspace import Workspace

OPEN_ATTEMPTS = 2  # a local port taken between choosing and binding it: choose another
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass
class Tunnel:
    node: str
    url: str | None = None
    error: str | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Tunnels:
    """A pool of tunnels, one per node: ``open(nodes)`` starts those missing (or whose ssh exited), in
    parallel; ``url(node)`` is the local end, ``error(node)`` why there is none. The provider keeps its pool
    between calls (an ``audit --watch`` reuses the SSH connections; the sweep's anchor dials a node's
    ``rpc_address`` after the observation) and closes it on destroy and at exit; the ssh processes also end
    with hcops itself (PR_SET_PDEATHSIG), so that a killed hcops leaves none behind."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.tunnels: dict[str, Tunnel] = {}

    def open(self, nodes: Iterable[str]) -> Tunnels:
        wanted = [n for n in nodes if not (n in self.tunnels and self.tunnels[n].alive)]
        for n in wanted:
            self._stop(self.tunnels.pop(n, None))
        # Started from this thread, all at once, then waited for together: the parent-death signal is tied
        # to the thread that forks the child, so a worker thread's exit would end its tunnels.
        pending = {n: self._start(n) for n in wanted}
        attempts = dict.fromkeys(wanted, 1)
        deadline = time.monotonic() + self.ws.settings.connection.timeout + 5
        while pending:
            for n, (proc, port) in list(pending.items()):
                if proc.poll() is None and _accepts(port):
                    self.tunnels[n] = Tunnel(n, f"http://127.0.0.1:{port}", process=proc)
                    del pending[n]
                elif proc.poll() is not None or time.monotonic() > deadline:
                    error = _finish(proc)
                    if "forward" in error.lower() and attempts[n] < OPEN_ATTEMPTS:  # the port was taken
                        attempts[n] += 1
                        pending[n] = self._start(n)
                        continue
                    self.tunnels[n] = Tunnel(n, error=f"SSH tunnel to {n}'s RPC failed: {error}")
                    del pending[n]
            if pending:
                time.sleep(0.1)
        return self

    def url(self, node: str) -> str | None:
        t = self.tunnels.get(node)
        return t.url if t is not None and t.alive else None

    def error(self, node: str) -> str | None:
        t = self.tunnels.get(node)
        if t is None:
            return "no tunnel"
        return t.error if t.error or t.alive else f"the SSH tunnel to {node} ended"

    def close(self) -> None:
        tunnels, self.tunnels = list(self.tunnels.values()), {}
        for t in tunnels:
            if t.process is not None and t.process.poll() is None:
                t.process.terminate()
        for t in tunnels:
            self._stop(t)

    @staticmethod
    def _stop(t: Tunnel | None) -> None:
        if t is None or t.process is None:
            return
        if t.process.poll() is None:
            t.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            t.process.wait(timeout=5)
        if t.process.poll() is None:
            t.process.kill()
            t.process.wait()
        if t.process.stderr is not None:
            t.process.stderr.close()

    def command(self, node: str, local_port: int) -> list[str]:
        settings = self.ws.settings
        host = settings.host(node)
        conn = settings.connection
        cmd = ["ssh", "-N", "-L", f"127.0.0.1:{local_port}:127.0.0.1:{RPC_PORT}", *self.ws.ssh_options(),
               "-o", "ExitOnForwardFailure=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none",
               "-p", str(host.port or conn.port)]
        if self.ws.private_key is not None:
            cmd += ["-i", str(self.ws.private_key)]
        if conn.user is not None:
            cmd += ["-l", conn.user]
        return [*cmd, "--", host.address]

    def _start(self, node: str) -> tuple[subprocess.Popen[bytes], int]:
        port = _free_port()
        proc = subprocess.Popen(self.command(node, port), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        return proc, port


def _finish(proc: subprocess.Popen[bytes]) -> str:
    """Stop a tunnel that did not come up; what ssh said about it."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    raw = proc.stderr.read() if proc.stderr else b""
    if proc.stderr:
        proc.stderr.close()
    return " ".join(raw.decode("utf-8", "replace").split())[:300] or "ssh gave up"


def _die_with_parent() -> None:
    """In the ssh child, before exec: be sent SIGTERM when hcops ends, however it ends."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def rpc_tunnels(ws: Workspace, nodes: Iterable[str]) -> Iterator[Tunnels]:
    """Tunnels for the duration of a ``with`` block (the benchmark, tests)."""
    t = Tunnels(ws).open(nodes)
    try:
        yield t
    finally:
        t.close()


def remote_output(ws: Workspace, node: str, argv: list[str], *, timeout: float = 20.0) -> str:
    """Output of one command on a host over SSH (diagnostics only: a journal tail), "" when it fails."""
    settings = ws.settings
    host = settings.host(node)
    conn = settings.connection
    cmd = ["ssh", *ws.ssh_options(), "-p", str(host.port or conn.port)]
    if ws.private_key is not None:
        cmd += ["-i", str(ws.private_key)]
    if conn.user is not None:
        cmd += ["-l", conn.user]
    remote = (["sudo", "-n"] if conn.become else []) + argv
    try:
        out = subprocess.run([*cmd, "--", host.address, *remote], capture_output=True, timeout=timeout,
                             stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else ""

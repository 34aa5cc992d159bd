"""The one readiness rule (hcops.providers.readiness) over fake nodes: an RpcClient whose transport answers
from an in-memory chain, and a clock that only moves when the wait sleeps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from hcops.errors import ExitCode
from hcops.plan.desired import NetworkPlan, build_plan
from hcops.progress import RecordingReporter
from hcops.providers.readiness import (
    Deadline,
    NotReady,
    Progress,
    Source,
    Target,
    Waiter,
    log_hint,
    signed_blocks,
)
from hcops.providers.rpc import RpcClient, RpcUnavailable
from hcops.spec.loader import load_spec

VALIDATORS = {"a": "AA", "b": "BB", "c": "CC"}


class Clock:
    """Time that passes only in ``sleep``; each sleep may grow the chain."""

    def __init__(self) -> None:
        self.now = 100.0
        self.on_sleep: list[Callable[[], None]] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for hook in self.on_sleep:
            hook()


class Chain:
    """Heights 1..height; ``signers(h)`` says who signed the commit of height h."""

    def __init__(self, height: int, signers: Callable[[int], set[str]] | None = None) -> None:
        self.height = height
        self.signers = signers or (lambda h: set(VALIDATORS.values()))

    def grow(self) -> None:
        self.height += 1


class FakeNode:
    """A ``Transport`` answering /status, /commit and /net_info from a ``Chain``."""

    def __init__(self, name: str, chain: Chain, *, lag: int = 0, peers: int = 2) -> None:
        self.name = name
        self.chain = chain
        self.lag = lag
        self.peers = peers
        self.down = False
        self.commit_down = False
        self.catching_up = False
        self.calls: list[str] = []

    @property
    def height(self) -> int:
        return max(0, self.chain.height - self.lag)

    def where(self, target: str) -> str:
        return f"fake://{self.name}/{target}"

    def close(self) -> None:
        pass

    def get(self, target: str) -> Any:
        self.calls.append(target)
        parts = urlsplit(target)
        if self.down or (self.commit_down and parts.path == "commit"):
            raise RpcUnavailable(f"{self.where(target)}: connection refused")
        if parts.path == "status":
            return {"result": {"node_info": {"id": self.name}, "validator_info": {},
                               "sync_info": {"latest_block_height": str(self.height),
                                             "catching_up": self.catching_up}}}
        if parts.path == "net_info":
            return {"result": {"peers": [{"node_info": {"id": f"p{i}"}} for i in range(self.peers)]}}
        h = int(parse_qs(parts.query)["height"][0])
        assert h <= self.height, f"{self.name} asked for height {h} above its {self.height}"
        sigs = [{"block_id_flag": 2, "validator_address": a} for a in sorted(self.chain.signers(h))]
        return {"result": {"signed_header": {"header": {"height": str(h)}, "commit": {"signatures": sigs}},
                           "canonical": True}}


def client(node: FakeNode) -> RpcClient:
    return RpcClient(f"fake://{node.name}", attempts=1, transport=node)


class Handle:
    def __init__(self, *, up: bool = True, hint: str | None = "see the logs") -> None:
        self.up = up
        self.hint = hint
        self.failure: str | None = None
        self.checks = 0

    def check(self, node: str) -> None:
        self.checks += 1
        if self.failure:
            raise NotReady(f"node {node}: {self.failure}", hint=self.hint)

    def running(self) -> bool:
        return self.up

    def log_hint(self) -> str | None:
        return self.hint


def wait(sources: list[RpcClient], clock: Clock, min_blocks: int = 3, timeout: float = 10.0,
         **kw: Any) -> tuple[int, RecordingReporter, Progress]:
    reporter = RecordingReporter()
    progress = Progress()
    deadline = Deadline(timeout, clock, clock.sleep)
    got = signed_blocks(lambda: [Source(r) for r in sources], VALIDATORS, min_blocks, deadline=deadline,
                        reporter=reporter, progress=progress,
                        timed_out=lambda: NotReady(f"timed out: {progress.signed} so far; last: {progress.last}"),
                        **kw)
    return got, reporter, progress


def test_counts_commits_signed_by_every_validator_as_heights_advance() -> None:
    clock, chain = Clock(), Chain(1)
    clock.on_sleep.append(chain.grow)
    node = FakeNode("a", chain)
    latest, reporter, progress = wait([client(node)], clock)
    # height 1..3 are counted; the latest one is read again until the chain has moved on
    assert latest == 3 and progress.signed == 3
    updates = [e for e in reporter.events if e[0] == "update"]
    assert updates == [("update", "blocks signed by every validator 0/3 from height 1"),
                       ("update", "blocks signed by every validator 1/3 height 1"),
                       ("update", "blocks signed by every validator 2/3 height 2"),
                       ("update", "blocks signed by every validator 3/3 height 3")]
    commits = [c for c in node.calls if c.startswith("commit")]
    assert commits == ["commit?height=1", "commit?height=1", "commit?height=2", "commit?height=2",
                       "commit?height=3"]


def test_a_commit_missing_a_signature_does_not_count_and_is_named() -> None:
    clock, chain = Clock(), Chain(1, signers=lambda h: {"AA", "CC"} if h in (2, 3) else {"AA", "BB", "CC"})
    clock.on_sleep.append(chain.grow)
    latest, _, progress = wait([client(FakeNode("a", chain))], clock, min_blocks=3)
    assert latest == 5  # 1, 4 and 5 carry every signature
    assert progress.missing == {"b"} and progress.last == "height 3: no signature of b"


def test_since_and_required_limit_what_counts() -> None:
    clock, chain = Clock(), Chain(10, signers=lambda h: {"AA"})
    clock.on_sleep.append(chain.grow)
    node = FakeNode("a", chain)
    latest, reporter, _ = wait([client(node)], clock, min_blocks=2, since=11, required=["a"], task="blocks signed by a")
    assert latest == 12
    assert min(int(c.split("=")[1]) for c in node.calls if c.startswith("commit")) == 11
    assert ("update", "blocks signed by a 2/2 height 12") in reporter.events


def test_timeout_names_the_blocks_counted_and_the_missing_validator() -> None:
    clock, chain = Clock(), Chain(1, signers=lambda h: {"AA", "BB"} if h > 1 else {"AA", "BB", "CC"})
    clock.on_sleep.append(chain.grow)
    with pytest.raises(NotReady) as err:
        wait([client(FakeNode("a", chain))], clock, min_blocks=3, timeout=2.0, interval=0.5)
    assert err.value.message == "timed out: 1 so far; last: height 6: no signature of c"
    assert err.value.exit_code == ExitCode.CHECK_FAILED
    assert clock.now == 102.5  # polled every 0.5 s, given up at the first poll past the deadline


def test_reads_from_the_first_source_that_answers() -> None:
    clock, chain = Clock(), Chain(3)
    down, lagging = FakeNode("down", chain), FakeNode("lagging", chain, lag=1)
    down.down = True
    latest, reporter, progress = wait([client(down), client(lagging)], clock, min_blocks=2)
    assert latest == 2 and ("update", "blocks signed by every validator 2/2 height 2") in reporter.events
    assert progress.last.startswith("fake://down/status: connection refused")
    # a source that fails part-way hands over to the next one, from where it stopped
    clock, chain = Clock(), Chain(4)
    flaky, good = FakeNode("flaky", chain), FakeNode("good", chain)
    flaky.commit_down = True
    assert wait([client(flaky), client(good)], clock, min_blocks=4)[0] == 4


def test_no_answer_at_all_times_out_with_no_answer() -> None:
    clock, chain = Clock(), Chain(3)
    node = FakeNode("a", chain)
    node.down = True
    with pytest.raises(NotReady, match="0 so far; last: fake://a/status: connection refused"):
        wait([client(node)], clock, timeout=1.0)
    with pytest.raises(NotReady, match="0 so far; last: no answer"):
        wait([], clock, timeout=1.0)


def test_deadline_poll_returns_fails_at_once_or_times_out() -> None:
    clock = Clock()
    tries: list[float] = []

    def after(n: int) -> Callable[[], int | None]:
        def attempt() -> int | None:
            tries.append(clock.now)
            return len(tries) if len(tries) >= n else None
        return attempt

    assert Deadline(5, clock, clock.sleep).poll(after(3), 1.0, lambda: AssertionError()) == 3
    assert tries == [100.0, 101.0, 102.0]
    tries.clear()
    with pytest.raises(TimeoutError):
        Deadline(2, clock, clock.sleep).poll(after(99), 1.0, lambda: TimeoutError("late"))
    assert len(tries) == 4  # at 0, 1, 2 and 3 s: given up once past the deadline

    def crash() -> None:
        raise NotReady("crashed")

    with pytest.raises(NotReady, match="crashed"):
        Deadline(5, clock, clock.sleep).poll(crash, 1.0, lambda: AssertionError())


def targets(chain: Chain, *names: str) -> list[Target]:
    return [Target(n, client(FakeNode(n, chain)), Handle(), VALIDATORS.get(n)) for n in names]


def test_waiter_reads_the_highest_node_then_lets_observers_catch_up() -> None:
    clock, chain = Clock(), Chain(5)
    clock.on_sleep.append(chain.grow)
    ts = targets(chain, "a", "b", "c") + [Target("obs", client(FakeNode("obs", chain, lag=4)), Handle())]
    slow = FakeNode("a", chain, lag=2)
    ts[0].rpc = client(slow)
    waiter = Waiter(ts, RecordingReporter(), 30, clock, clock.sleep)
    waiter.running()
    latest = waiter.network(VALIDATORS, 2, since=5)
    assert latest == 6 and not [c for c in slow.calls if c.startswith("commit")]  # the lagging node is not read
    assert waiter.progress.heights["a"] == 4 and waiter.progress.heights["obs"] >= latest - 2
    assert all(isinstance(t.handle, Handle) and t.handle.checks for t in ts)


def test_waiter_fails_at_once_when_a_handle_fails() -> None:
    clock, chain = Clock(), Chain(1, signers=lambda h: {"AA"})
    ts = targets(chain, "a", "b")
    waiter = Waiter(ts, RecordingReporter(), 30, clock, clock.sleep)
    handle = ts[1].handle
    assert isinstance(handle, Handle)
    handle.failure = "container exited (exit code 1)"
    with pytest.raises(NotReady, match="node b: container exited") as err:
        waiter.signed_blocks(VALIDATORS, 2)
    assert err.value.hint == "see the logs" and clock.now == 100.0


def test_waiter_timeout_says_what_was_seen() -> None:
    clock, chain = Clock(), Chain(7, signers=lambda h: {"AA", "BB"})  # c never signs, the chain is stuck
    ts = targets(chain, "a", "b", "c")
    quiet = FakeNode("c", chain, peers=0)
    ts[2].rpc = client(quiet)
    ts[2].handle = Handle(hint="last log lines of c:\n  dial failed")
    waiter = Waiter(ts, RecordingReporter(), 8, clock, clock.sleep)
    with pytest.raises(NotReady) as err:
        waiter.signed_blocks(VALIDATORS, 2)
    assert err.value.message == ("timed out after 8 s waiting for blocks signed by every validator: not signing: c; "
                                 "height stuck at 7 for 8 s; c: not peering (0 peers)")
    assert err.value.hint == "last log lines of c:\n  dial failed"
    quiet.down = True
    assert "c: RPC not answering (fake://c/status: connection refused)" in waiter.timeout_error("x").message


def test_waiter_synced_waits_for_the_node_to_stop_catching_up() -> None:
    clock, chain = Clock(), Chain(10)
    node = FakeNode("obs", chain, lag=3)
    node.catching_up = True
    target = Target("obs", client(node), Handle())
    reporter = RecordingReporter()
    waiter = Waiter([target], reporter, 30, clock, clock.sleep)

    def catch_up() -> None:
        node.lag = max(0, node.lag - 1)
        node.catching_up = node.lag > 0

    clock.on_sleep.append(catch_up)
    assert waiter.synced(target, min_height=9) == 10
    assert ("update", "obs catching up 9/9") in reporter.events
    with pytest.raises(NotReady, match="waiting for obs to catch up to height 99"):
        Waiter([target], reporter, 1, clock, clock.sleep).synced(target, min_height=99)


def test_running_needs_every_handle_up_and_one_node_answering() -> None:
    clock, chain = Clock(), Chain(1)
    ts = targets(chain, "a", "b")
    first = ts[0].handle
    assert isinstance(first, Handle)
    first.up = False
    reporter = RecordingReporter()
    clock.on_sleep.append(lambda: setattr(first, "up", True))
    Waiter(ts, reporter, 10, clock, clock.sleep).running()
    assert [e for e in reporter.events if e[0] == "update"] == [("update", "containers running 1/2"),
                                                                ("update", "containers running 2/2")]


def test_log_hint_indents_the_tail_or_says_where_to_look() -> None:
    assert log_hint("n0", "one\ntwo", "see elsewhere") == "last log lines of n0:\n  one\n  two"
    assert log_hint("n0", "", "see elsewhere") == "see elsewhere"


# ---------------------------------------------------------------- the provider adapters
class ProxyApi:
    """The API server's pod proxy in front of FakeNodes (``KubeApi.request`` for GETs only)."""

    server = "https://api.invalid:6443"

    def __init__(self, nodes: dict[str, FakeNode]) -> None:
        self.nodes = nodes
        self.paths: list[str] = []

    def request(self, method: str, path: str, *, timeout: float | None = None) -> Any:
        from hcops.providers.kubernetes.api import ApiError

        self.paths.append(path)
        pod, target = path.split("/pods/")[1].split(":26657/proxy/")
        try:
            return self.nodes[pod].get(target)
        except RpcUnavailable:
            raise ApiError(503, "ServiceUnavailable", "error trying to reach service: connection refused") from None


@pytest.fixture
def plan(spec_dir: Any, tmp_path: Path) -> NetworkPlan:
    return build_plan(load_spec(spec_dir.spec), tmp_path / "state")


def kube_waiter(plan: NetworkPlan, api: ProxyApi, clock: Clock, timeout: float) -> tuple[Any, dict[str, Any]]:
    from hcops.providers.kubernetes.readiness import PodState, Waiter

    states = {n.name: PodState(n.name, f"{n.name}-0", "Running", True, None, 0) for n in plan.nodes}
    want = SimpleNamespace(namespace="ns", nodes={n.name for n in plan.nodes})
    return Waiter(api, plan, want, RecordingReporter(), timeout, clock, clock.sleep), states  # type: ignore[arg-type]


def test_kubernetes_waits_through_the_pod_proxy_validators_first(plan: NetworkPlan) -> None:
    validators = {n.keys.validator_address for n in plan.nodes if n.node.is_validator}
    clock, chain = Clock(), Chain(1, signers=lambda h: validators)
    clock.on_sleep.append(chain.grow)
    nodes = {f"{n.name}-0": FakeNode(n.name, chain) for n in plan.nodes}
    nodes["a-val-0-0"].down = True
    api = ProxyApi(nodes)
    waiter, states = kube_waiter(plan, api, clock, 30)
    assert waiter.signed_blocks(states, 2) == 2
    assert clock.now == 100.5  # POLL / 2 between polls
    assert api.paths[0] == "/api/v1/namespaces/ns/pods/a-val-0-0:26657/proxy/status"
    assert api.paths[1] == "/api/v1/namespaces/ns/pods/b-val-0-0:26657/proxy/status"
    assert not [p for p in api.paths if "d-obs-0" in p]  # observers only when no validator answers


def test_kubernetes_timeout_names_the_last_thing_seen(plan: NetworkPlan) -> None:
    clock, chain = Clock(), Chain(3, signers=lambda h: set())
    nodes = {f"{n.name}-0": FakeNode(n.name, chain) for n in plan.nodes}
    waiter, states = kube_waiter(plan, ProxyApi(nodes), clock, 2)
    with pytest.raises(NotReady) as err:
        waiter.signed_blocks(states, 3)
    assert err.value.message == ("timed out after 2 s waiting for 3 blocks signed by every validator (0 so far; "
                                 "last: height 3: no signature of a-val-0, b-val-0, c-val-0, d-val-0)")
    for node in nodes.values():
        node.down = True
    waiter, states = kube_waiter(plan, ProxyApi(nodes), clock, 2)
    with pytest.raises(NotReady, match=r"\(0 so far; last: d-obs-0-0: error trying to reach service: connection "
                                       r"refused\)$"):
        waiter.signed_blocks(states, 3)


class FakeContainer:
    def __init__(self, status: str = "running", restarts: int = 0, logs: bytes = b"") -> None:
        self.name = "net-a-val-0"
        self.attrs: dict[str, Any] = {"State": {"Status": status}, "RestartCount": restarts}
        self.next: dict[str, Any] | None = None
        self._logs = logs

    def reload(self) -> None:
        if self.next is not None:
            self.attrs = self.next

    def logs(self, **_: Any) -> bytes:
        return self._logs


def test_container_handle_fails_on_exit_or_restart_with_its_logs() -> None:
    from hcops.providers.docker.readiness import ContainerHandle

    c = FakeContainer(restarts=2, logs=b"panic: boom\n")
    handle = ContainerHandle(c)
    handle.check("a-val-0")  # restarts before the wait do not count
    assert handle.running()
    c.next = {"State": {"Status": "running"}, "RestartCount": 3}
    with pytest.raises(NotReady, match=r"node a-val-0: container net-a-val-0 is crash-looping \(restarted 1 time"):
        handle.check("a-val-0")
    c.next = {"State": {"Status": "exited", "ExitCode": 137, "OOMKilled": True}, "RestartCount": 2}
    with pytest.raises(NotReady) as err:
        handle.check("a-val-0")
    assert err.value.message == ("node a-val-0: container net-a-val-0 exited (exit code 137, killed for exceeding "
                                 "its memory limit)")
    assert err.value.hint == "last log lines of net-a-val-0:\n  panic: boom"
    assert ContainerHandle(FakeContainer()).log_hint() == "see `docker logs net-a-val-0`"


def test_unit_handle_never_fails_and_hints_with_the_journal(plan: NetworkPlan, monkeypatch: pytest.MonkeyPatch) -> None:
    from hcops.providers.ansible import readiness as hosts

    journal = {"text": "2026-01-01 n0 cometbft[1]: dial tcp: refused\n"}
    asked: list[list[str]] = []

    def remote_output(ws: Any, node: str, argv: list[str], **_: Any) -> str:
        asked.append(argv)
        return journal["text"]

    monkeypatch.setattr(hosts, "remote_output", remote_output)
    handle = hosts.UnitHandle(SimpleNamespace(plan=plan), "a-val-0")  # type: ignore[arg-type]
    handle.check("a-val-0")
    assert handle.running()
    assert handle.log_hint() == (f"last log lines of {handle.unit} on a-val-0:\n"
                                 "  2026-01-01 n0 cometbft[1]: dial tcp: refused")
    assert asked[0][:4] == ["journalctl", "-u", handle.unit, "-n"]
    journal["text"] = ""
    assert handle.log_hint() == f"see `journalctl -u {handle.unit}` on a-val-0"

"""Deploy use cases and commands over the in-memory provider: gate first, lock, exit codes, output; and
the state file and lock on their own."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from hcops import cli as cli_module
from hcops.errors import CheckFailed, EnvironmentProblem, InvalidInput
from hcops.plan.desired import NetworkPlan
from hcops.providers.base import ApplyOptions
from hcops.providers.state import NetworkState, NodeRecord, StateStore, network_lock
from hcops.usecases import deploy
from tests.conftest import SpecDir
from tests.providers.fake import FakeProvider


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    prov = FakeProvider()
    monkeypatch.setattr(deploy, "get_provider", lambda name: prov)
    return prov


def test_gate_runs_before_anything_is_touched(spec_dir: SpecDir, state_dir: Path, fake: FakeProvider) -> None:
    seen: list[str] = []

    def gate(plan: NetworkPlan) -> None:
        seen.append(plan.name)
        raise CheckFailed("policy says no")

    with pytest.raises(CheckFailed):
        deploy.apply(spec_dir.spec, gate=gate)
    assert seen == ["small-net"] and fake.applied == []
    out = deploy.apply(spec_dir.spec, gate=lambda p: None)
    assert out.changed and fake.applied == ["small-net"]
    assert not deploy.apply(spec_dir.spec).changed


def test_lock_makes_a_second_apply_wait_then_fail(spec_dir: SpecDir, state_dir: Path,
                                                  fake: FakeProvider) -> None:
    folder = state_dir / "small-net"
    release = threading.Event()
    held = threading.Event()

    def holder() -> None:
        with network_lock(folder, "small-net"):
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    try:
        started = time.monotonic()
        with pytest.raises(EnvironmentProblem, match="locked by another hcops apply/destroy") as info:
            deploy.apply(spec_dir.spec, lock_timeout=0.5)
        assert time.monotonic() - started >= 0.5 and info.value.hint and ".lock" in info.value.hint
        with pytest.raises(EnvironmentProblem, match="locked"):
            deploy.destroy(spec_dir.spec, lock_timeout=0)
    finally:
        release.set()
        t.join()
    assert deploy.apply(spec_dir.spec, lock_timeout=0.5).changed


def test_purge_keys_needs_prune_volumes(spec_dir: SpecDir, state_dir: Path, fake: FakeProvider) -> None:
    deploy.apply(spec_dir.spec)
    with pytest.raises(InvalidInput, match="--purge-keys needs --prune-volumes"):
        deploy.destroy(spec_dir.spec, purge_keys=True)
    out = deploy.destroy(spec_dir.spec, prune_volumes=True, purge_keys=True)
    assert out.purged_keys and not (state_dir / "small-net" / "keys").exists()


def test_state_file_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "net")
    st = store.load("net", "docker")
    assert st.phase == "new" and st.nodes == {}
    st.phase, st.nodes["a"] = "applied", NodeRecord(container="net-a", resource_id="123", volume="net-a-data")
    store.save(st)
    assert store.load("net", "docker") == st
    assert (store.path.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in store.folder.iterdir()] == ["state.json"]  # no temp files left behind
    store.path.write_text("{broken")
    with pytest.raises(EnvironmentProblem, match="unreadable state file"):
        store.load("net", "docker")
    assert NetworkState.from_json(st.to_json()) == st


# The policy gate has its own tests; these exercise the deploy commands around it.
NO_GATE = ("--skip-gate", "--reason", "deploy command tests")


def invoke(*argv: str) -> tuple[int, str]:
    """Run the command line in-process; output goes to capsys."""
    try:
        cli_module.main(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0), ""
    return 0, ""


def test_cli_plan_apply_status_destroy(spec_dir: SpecDir, state_dir: Path, fake: FakeProvider,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    f = str(spec_dir.spec)
    assert invoke("plan", "-f", f, "--detailed-exitcode")[0] == 2
    capsys.readouterr()
    assert invoke("plan", "-f", f, "-o", "json")[0] == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["network"] == "small-net" and doc["summary"]["create"] == 11 and doc["pending"] == 11
    assert invoke("apply", "-f", f, "--yes", *NO_GATE)[0] == 0
    out = capsys.readouterr()
    assert "a-val-0" in out.out and "applied:" in out.out
    assert invoke("plan", "-f", f, "--detailed-exitcode")[0] == 0
    capsys.readouterr()
    assert invoke("apply", "-f", f, "--yes", *NO_GATE)[0] == 0
    assert "no changes" in capsys.readouterr().out
    assert invoke("status", "-f", f, "-o", "json")[0] == 0
    status = json.loads(capsys.readouterr().out)
    assert [n["name"] for n in status["nodes"]] == ["a-val-0", "b-val-0", "c-val-0", "d-val-0", "d-obs-0"]
    assert invoke("destroy", "-f", f, "--purge-keys", "--prune-volumes")[0] == 2
    assert "--yes" in capsys.readouterr().err
    assert invoke("destroy", "-f", f)[0] == 0
    assert "kept 5 volume(s)" in capsys.readouterr().out


def test_cli_apply_without_yes_and_without_terminal_refuses(spec_dir: SpecDir, state_dir: Path,
                                                            fake: FakeProvider,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = invoke("apply", "-f", str(spec_dir.spec))
    assert code == 2 and "pass --yes" in capsys.readouterr().err and fake.applied == []


def test_apply_options_reach_the_provider(spec_dir: SpecDir, state_dir: Path, fake: FakeProvider) -> None:
    deploy.apply(spec_dir.spec, options=ApplyOptions(timeout=5, prune_volumes=True))
    assert fake.volumes["small-net"] == {"a-val-0", "b-val-0", "c-val-0", "d-val-0", "d-obs-0"}


def test_an_engine_upgrade_is_recorded_and_a_minor_jump_refused(spec_dir: SpecDir, state_dir: Path,
                                                               fake: FakeProvider) -> None:
    from hcops.audit.log import AuditLog

    deploy.apply(spec_dir.spec)
    text = spec_dir.spec.read_text()
    spec_dir.spec.write_text(text.replace('"0.38.17"', '"0.38.19"').replace("v0.38.17", "v0.38.19"))
    deploy.apply(spec_dir.spec)
    with AuditLog(state_dir / "small-net" / "audit.db", create=False) as log:
        (record,) = log.records("engine_upgrade")
    assert (record.body["from"], record.body["to"]) == ("0.38.17", "0.38.19")
    assert record.body["image"] == ["cometbft/cometbft:v0.38.19"] and record.body["network"] == "small-net"
    deploy.apply(spec_dir.spec)  # no second record for an apply that upgrades nothing
    spec_dir.spec.write_text(text.replace('"0.38.17"', '"1.0.1"').replace("v0.38.17", "v1.0.1"))
    with pytest.raises(InvalidInput, match=r"refusing the upgrade: .* leaves the 0\.38\.x series") as info:
        deploy.apply(spec_dir.spec)
    assert info.value.hint and "one agreed height" in info.value.hint
    with AuditLog(state_dir / "small-net" / "audit.db", create=False) as log:
        assert len(log.records("engine_upgrade")) == 1

"""Running the shipped playbooks through the ansible-runner Python API, and reading what they did.

Runner events are streamed into hcops' ``Reporter`` as they arrive: one line per task once every host has
answered it (how many changed), a warning per failed or unreachable host. The result keeps what hcops needs
(per host: changed tasks with a short diff, the first failure, the results of the role's own report and
probe tasks) and never key material: the role's key tasks are ``no_log``, so Ansible censors their results
before any event, artifact or line of output sees them.

Artifacts go to ``<state>/<network>/ansible/runs/<ident>/`` and are rotated (``keepRuns``).
"""

from __future__ import annotations

import difflib
import os
import secrets
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hcops.clock import now, stamp
from hcops.errors import EnvironmentProblem
from hcops.progress import Reporter
from hcops.providers.base import FieldChange

if TYPE_CHECKING:
    from hcops.providers.ansible.workspace import Workspace

# Results of these tasks are read back (by task name); everything else is counted only.
PROBE_TASK = "Probe the host"
REPORT_TASK = "Report to hcops"
FACTS_TASK = "Facts for hcops"
READ_TASKS = frozenset({PROBE_TASK, REPORT_TASK, FACTS_TASK})
KEY_TASKS = "key files or signing state (no_log)"
MAX_DIFF_LINES = 3
MAX_MESSAGE = 300


@dataclass(frozen=True)
class HostRun:
    """What one run did on one host."""

    changed: tuple[FieldChange, ...] = ()  # one per changed task: (task, removed lines, added lines)
    failed: str | None = None
    unreachable: str | None = None
    results: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # READ_TASKS results by task


@dataclass(frozen=True)
class RunResult:
    playbook: str
    ident: str
    status: str  # successful | failed | timeout | canceled
    rc: int
    check: bool
    seconds: float
    hosts: Mapping[str, HostRun]

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0

    @property
    def changed_hosts(self) -> dict[str, list[str]]:
        return {h: [c.field for c in r.changed] for h, r in sorted(self.hosts.items()) if r.changed}

    @property
    def failures(self) -> dict[str, str]:
        return {h: r.failed or f"unreachable: {r.unreachable}" for h, r in sorted(self.hosts.items())
                if r.failed or r.unreachable}

    def result(self, host: str, task: str) -> Mapping[str, Any] | None:
        run = self.hosts.get(host)
        return None if run is None else run.results.get(task)

    def audit_body(self, network: str, spec_hash: str) -> dict[str, Any]:
        """The ``ansible_run`` record of the audit log: outcome, changed hosts (task names), failures."""
        return {"network": network, "specHash": spec_hash, "playbook": self.playbook, "ident": self.ident,
                "status": self.status, "rc": self.rc, "check": self.check,
                "durationSeconds": round(self.seconds, 3), "hosts": sorted(self.hosts),
                "changedHosts": self.changed_hosts, "failures": self.failures}


def _short(text: Any) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= MAX_MESSAGE else s[:MAX_MESSAGE] + "..."


def _failure(res: Mapping[str, Any]) -> str:
    if res.get("censored"):
        return "a task that handles key material failed (its output is hidden: no_log)"
    parts = [res.get("msg"), res.get("stderr"), res.get("module_stderr")]
    return _short(next((p for p in parts if p), "failed"))


def _diff_lines(diff: Any) -> tuple[str, str]:
    """The lines a task's --diff removed and added, a few of each: enough for a plan table."""
    removed: list[str] = []
    added: list[str] = []
    for d in diff if isinstance(diff, list) else [diff]:
        if not isinstance(d, Mapping):
            continue
        before, after = d.get("before"), d.get("after")
        if isinstance(before, str) and isinstance(after, str):
            for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0):
                if line.startswith(("---", "+++", "@@")):
                    continue
                (removed if line.startswith("-") else added).append(line[1:].strip())
        elif isinstance(before, Mapping) and isinstance(after, Mapping):  # file attributes: mode, owner, state
            for k in sorted(set(before) | set(after)):
                if k != "path" and before.get(k) != after.get(k):
                    removed.append(f"{k}={before.get(k)}")
                    added.append(f"{k}={after.get(k)}")
    return ("; ".join(removed[:MAX_DIFF_LINES]) + ("; ..." if len(removed) > MAX_DIFF_LINES else ""),
            "; ".join(added[:MAX_DIFF_LINES]) + ("; ..." if len(added) > MAX_DIFF_LINES else ""))


class _Events:
    """Collects runner events into per-host results and streams them into the reporter."""

    def __init__(self, reporter: Reporter, playbook: str, hosts: int) -> None:
        self.reporter = reporter
        self.playbook = playbook
        self.expected = hosts
        self.hosts: dict[str, dict[str, Any]] = {}
        self.task: str | None = None
        self.answered: set[str] = set()
        self.changed_now: set[str] = set()
        self.lock = threading.Lock()

    def host(self, name: str) -> dict[str, Any]:
        return self.hosts.setdefault(name, {"changed": {}, "failed": None, "unreachable": None, "results": {}})

    def flush(self) -> None:
        if self.task is not None and self.answered:
            detail = f"changed on {len(self.changed_now)}" if self.changed_now else ""
            self.reporter.update(f"{self.playbook}: {self.task}", len(self.answered),
                                 max(self.expected, len(self.answered)), detail)
        self.answered, self.changed_now = set(), set()

    def __call__(self, event: Mapping[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        with self.lock:
            if kind == "playbook_on_task_start":
                self.flush()
                self.task = str(data.get("task") or data.get("name") or "")
            elif kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped"):
                self._result(kind, data)
            elif kind == "playbook_on_stats":
                self.flush()
                self._censored_changes(data.get("changed") or {})
        return False  # ansible-runner writes no per-event artifact file: the stdout and status are kept

    def _censored_changes(self, counts: Mapping[str, int]) -> None:
        """Ansible hides whether a ``no_log`` task changed anything; the play's per-host count of changed
        tasks does not: what it counts beyond the visible changes was done by the key tasks."""
        for name, count in counts.items():
            h = self.host(name)
            if int(count) > len(h["changed"]):
                h["changed"][KEY_TASKS] = FieldChange(KEY_TASKS, None, "changed")

    def _result(self, kind: str, data: Mapping[str, Any]) -> None:
        name = str(data.get("host") or "")
        task = str(data.get("task") or "")
        res: Mapping[str, Any] = data.get("res") or {}
        h = self.host(name)
        if kind != "runner_on_skipped":  # a skipped task is not progress worth a line
            self.answered.add(name)
        if kind == "runner_on_unreachable":
            h["unreachable"] = _failure(res)
            self.reporter.warn(f"{name}: unreachable: {h['unreachable']}")
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            h["failed"] = h["failed"] or f"{task}: {_failure(res)}"
            self.reporter.warn(f"{name}: {task} failed: {_failure(res)}")
        elif kind == "runner_on_ok":
            if task in READ_TASKS and not res.get("censored"):
                h["results"][task] = dict(res)
            if res.get("changed") and not res.get("censored"):
                self.changed_now.add(name)
                old, new = _diff_lines(res.get("diff")) if not res.get("censored") else ("", "")
                h["changed"][task] = FieldChange(task, old or None, new or "changed")


def new_ident(playbook: str) -> str:
    return f"{stamp(now())}-{playbook}-{secrets.token_hex(3)}"


def run_playbook(ws: Workspace, playbook: str, reporter: Reporter, *, hosts: list[str],
                 check: bool = False, extravars: Mapping[str, Any] | None = None,
                 timeout: float | None = None) -> RunResult:
    """Run ``playbooks/<playbook>.yml`` on ``hosts`` (a --limit) and wait for it."""
    try:
        import ansible_runner
    except ImportError:
        raise EnvironmentProblem("the ansible provider needs ansible-runner and ansible-core",
                                 hint="pip install 'hcops[ansible]' (scripts/bootstrap python installs them)") from None
    ident = new_ident(playbook)
    events = _Events(reporter, playbook, len(hosts))
    # Extra variables go in a file of !unsafe values (ansible-runner's own extravars are JSON, which Ansible
    # would evaluate as templates): a path with "{{" in it stays a path.
    vars_file = ws.extra_vars_file(ident, {**ws.extravars, **(extravars or {})})
    cmdline = "-e " + shlex.quote(f"@{vars_file}") + (" --check --diff" if check else "")
    started = time.monotonic()
    try:
        runner = ansible_runner.run(
            private_data_dir=str(ws.root), ident=ident, artifact_dir=str(ws.artifacts),
            playbook=str(ws.playbook(playbook)), inventory=str(ws.inventory), limit=",".join(hosts),
            envvars=_with_playbook_on_path(ws.envvars(len(hosts))), cmdline=cmdline,
            rotate_artifacts=ws.keep_runs, event_handler=events,
            quiet=True, suppress_env_files=True, timeout=int(timeout) if timeout else None)
    except Exception as exc:  # noqa: BLE001 - ansible-runner raises plain exceptions for a bad setup
        raise EnvironmentProblem(f"ansible-runner could not run {playbook}.yml: {_short(exc)}",
                                 hint="is ansible-core installed (pip install 'hcops[ansible]')?") from None
    finally:
        vars_file.unlink(missing_ok=True)
    seconds = time.monotonic() - started
    events.flush()
    per_host = {name: HostRun(changed=tuple(h["changed"].values()), failed=h["failed"],
                              unreachable=h["unreachable"], results=dict(h["results"]))
                for name, h in events.hosts.items()}
    for name in hosts:
        per_host.setdefault(name, HostRun())
    status = str(runner.status)
    rc = int(runner.rc if runner.rc is not None else -1)
    if status != "successful" and not any(r.failed or r.unreachable for r in per_host.values()):
        tail = _stdout_tail(runner)
        first = next(iter(hosts), "")
        per_host[first] = HostRun(failed=f"ansible-playbook {status} (rc {rc}){': ' + tail if tail else ''}")
    return RunResult(playbook=playbook, ident=ident, status=status, rc=rc, check=check, seconds=seconds,
                     hosts=per_host)


def _with_playbook_on_path(env: dict[str, str]) -> dict[str, str]:
    """ansible-runner runs "ansible-playbook" from PATH (a ``binary`` of its own changes how it builds the
    command): put this interpreter's bin/ first, where pip put ansible-core's, as a venv need not be on PATH."""
    beside = Path(sys.executable).parent
    if not (beside / "ansible-playbook").is_file() and shutil.which("ansible-playbook") is None:
        raise EnvironmentProblem("ansible-playbook not found (beside this Python or on PATH)",
                                 hint="pip install 'hcops[ansible]' (it brings ansible-core)")
    return {**env, "PATH": os.pathsep.join([str(beside), os.environ.get("PATH", os.defpath)])}


def _stdout_tail(runner: Any) -> str:
    """The end of the playbook's own output (a syntax or inventory error comes before any host event)."""
    try:
        text = runner.stdout.read()
    except (OSError, AttributeError, ValueError):
        return ""
    lines = [line for line in str(text).splitlines() if line.strip()]
    return _short(" | ".join(lines[-4:]))

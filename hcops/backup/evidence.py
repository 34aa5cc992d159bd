"""Backups, restores and drills in the audit log: the records written, and what is read back from them
(the report's CP-1 evidence, ``hcops backup list``, the runtime policies' facts and the metrics).

Record kinds: ``backup`` (``ok`` true with the archive's digest, size, node and heights; false with the
error), ``restore`` and ``drill`` (``ok``, what was checked, how long it took). The log is the authority:
an archive counts only through its record, and its digest is checked against the recorded one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcops.audit.log import AuditLog
from hcops.backup.archive import sha256_file
from hcops.clock import now_text, parse_time
from hcops.fsutil import read_file, write_private
from hcops.plan.desired import NetworkPlan

KINDS = ("backup", "restore", "drill")
DRILL_MAX_AGE = dt.timedelta(days=90)
VERIFY_CACHE = "backup-verified.json"
REVERIFY_AFTER = dt.timedelta(days=1)  # an unchanged archive is hashed again at least daily


def record(log: AuditLog, kind: str, body: Mapping[str, Any]) -> int:
    if kind not in KINDS:  # hcops.audit.log lists these kinds too; this module writes only its own
        raise ValueError(kind)
    return log.append(kind, body).seq


@dataclass(frozen=True)
class BackupRecord:
    seq: int
    time: str
    ok: bool
    id: str
    node: str
    path: str
    sha256: str
    size: int
    height: int
    base_height: int
    error: str | None
    body: Mapping[str, Any]

    @classmethod
    def of(cls, seq: int, time: str, body: Mapping[str, Any]) -> BackupRecord:
        return cls(seq, time, bool(body.get("ok")), str(body.get("id", "")), str(body.get("node", "")),
                   str(body.get("path", "")), str(body.get("sha256", "")), int(body.get("size") or 0),
                   int(body.get("height") or 0), int(body.get("base_height") or 0), body.get("error"), body)


@dataclass(frozen=True)
class DrillRecord:
    seq: int
    time: str
    ok: bool
    backup_id: str
    body: Mapping[str, Any]


def backups(log: AuditLog) -> list[BackupRecord]:
    """Every backup attempt still in the log, oldest first; archives expired by retention are left out."""
    found = [BackupRecord.of(r.seq, r.time, r.body) for r in log.records("backup")]
    expired = {e for b in found for e in b.body.get("expired") or ()}  # from retention records
    return [b for b in found if not b.body.get("retention") and (b.id not in expired or not b.ok)]


def latest_backup(log: AuditLog, node: str | None = None) -> BackupRecord | None:
    """The newest successful backup (of ``node``, when given): CP-1 evidence for the report."""
    ok = [b for b in backups(log) if b.ok and (node is None or b.node == node)]
    return ok[-1] if ok else None


def find_backup(log: AuditLog, backup_id: str) -> BackupRecord | None:
    return next((b for b in backups(log) if b.ok and b.id == backup_id), None)


def latest_drill(log: AuditLog, *, ok: bool | None = True) -> DrillRecord | None:
    """The newest restore drill (successful only by default): CP-1 evidence of tested restores."""
    for r in log.records("drill", newest_first=True):
        if ok is None or bool(r.body.get("ok")) == ok:
            return DrillRecord(r.seq, r.time, bool(r.body.get("ok")), str(r.body.get("backupId", "")), r.body)
    return None


def verify(b: BackupRecord) -> tuple[bool | None, str | None]:
    """(True, None) when the archive's SHA-256 is the recorded one; (False, why) when it is missing or
    differs; (None, why) when it cannot be read here."""
    path = Path(b.path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False, "the archive is missing"
    except OSError as exc:
        return None, f"cannot look at the archive: {exc.strerror}"
    if st.st_size != b.size:
        return False, f"size {st.st_size} differs from the recorded {b.size}"
    try:
        actual = sha256_file(path)
    except Exception as exc:  # noqa: BLE001 - any read failure leaves the digest unknown, not wrong
        return None, str(getattr(exc, "message", exc))
    return (True, None) if actual == b.sha256 else (False, f"SHA-256 {actual} differs from the recorded one")


def _verified(state_dir: Path, items: Sequence[BackupRecord], now: dt.datetime) -> dict[str, tuple[bool | None,
                                                                                               str | None]]:
    """Verification of the retained archives, re-hashing only those whose file changed (size, mtime, inode)
    or that were last hashed more than a day ago; the cache is a private file in the state folder."""
    path = state_dir / VERIFY_CACHE
    try:
        cache: dict[str, Any] = json.loads(read_file(path, private=True) or b"{}")
    except Exception:  # noqa: BLE001 - a damaged or unreadable cache is rebuilt
        cache = {}
    out: dict[str, tuple[bool | None, str | None]] = {}
    fresh: dict[str, Any] = {}
    for b in items:
        try:
            st = os.lstat(b.path)
            stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        except OSError:
            stamp = None
        hit = cache.get(b.id)
        if stamp is not None and hit and hit.get("stamp") == stamp and hit.get("sha256") == b.sha256 and \
                now - (parse_time(hit["checked"]) or EPOCH) < REVERIFY_AFTER and hit.get("ok") is True:
            out[b.id] = (True, None)
            fresh[b.id] = hit
            continue
        out[b.id] = verify(b)
        if out[b.id][0] is True:
            fresh[b.id] = {"stamp": stamp, "sha256": b.sha256, "ok": True, "checked": now_text(now)}
    if fresh != cache:
        with contextlib.suppress(Exception):  # the cache is an optimisation: never fail a sweep over it
            write_private(path, json.dumps(fresh, sort_keys=True).encode())
    return out


EPOCH = dt.datetime.fromtimestamp(0, dt.UTC)


def _ns(td: dt.timedelta) -> int:
    return int(td / dt.timedelta(microseconds=1)) * 1000


def _age(now: dt.datetime, time: str) -> int:
    return _ns(now - (parse_time(time) or EPOCH))  # an unreadable time counts as long ago: fail closed


def backup_facts(plan: NetworkPlan, log: AuditLog, now: dt.datetime) -> dict[str, Any]:
    """The ``backup`` section of the audit fact document (policies/runtime/contingency.rego)."""
    from hcops.backup.schedule import Schedule

    spec = plan.consortium.spec.backup
    interval = Schedule(spec.schedule).interval(now) if spec.schedule else None
    items = backups(log)
    cutoff = now - dt.timedelta(days=spec.retention_days)
    retained = [b for b in items if b.ok and (parse_time(b.time) or now) >= cutoff]  # unreadable: still checked
    checks = _verified(plan.state_dir, retained, now)
    ok = [b for b in items if b.ok]
    last, failed = (ok[-1] if ok else None), [b for b in items if not b.ok]
    drill, attempt = latest_drill(log), latest_drill(log, ok=None)
    first = log.records(limit=1)
    return {
        "enabled": spec.enabled,
        "schedule": spec.schedule,
        "intervalNs": _ns(interval) if interval else None,
        "overdueAfterNs": 2 * _ns(interval) if interval else None,
        "retentionDays": spec.retention_days,
        # how long hcops has been recording this network: a new network is not overdue before its first run
        "recordingForNs": _age(now, first[0].time) if first else 0,
        "lastSuccess": {"id": last.id, "node": last.node, "time": last.time, "ageNs": _age(now, last.time),
                        "height": last.height} if last else None,
        "lastSuccessTimeNs": _ns((parse_time(last.time) or EPOCH) - EPOCH) if last else None,
        "failures": len(failed),
        "lastFailure": {"node": failed[-1].node, "time": failed[-1].time, "error": failed[-1].error}
        if failed else None,
        "archives": [{"id": b.id, "node": b.node, "time": b.time, "path": b.path, "sha256": b.sha256,
                      "verified": checks[b.id][0], "problem": checks[b.id][1]} for b in retained],
        "drill": {"maxAgeNs": _ns(DRILL_MAX_AGE),
                  "lastSuccess": {"time": drill.time, "ageNs": _age(now, drill.time), "backupId": drill.backup_id}
                  if drill else None,
                  "lastAttempt": {"time": attempt.time, "ok": attempt.ok, "error": attempt.body.get("error")}
                  if attempt else None},
    }

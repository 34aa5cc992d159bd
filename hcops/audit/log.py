"""The audit log: an embedded SQLite file of hash-chained records (evidence of every sweep and gate run).

One table, ``records``, holds the chain; ``sweeps``, ``findings``, ``incidents``, ``gate_runs`` and
``anchors`` are views over it. Triggers refuse UPDATE, and DELETE outside a pruned range, so that
the log is append-only by construction; the hash chain makes any change made around them visible.
Beside the database, ``audit.db.head`` keeps the last sequence number and hash written, which
catches records deleted from the end.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hcops import clock
from hcops.audit.chain import GENESIS, Record, Verification, canonical, record_hash, verify_records
from hcops.errors import EnvironmentProblem, InvalidInput
from hcops.fsutil import make_dirs
from hcops.plan.state import network_dir
from hcops.settings import Settings, resolve

KINDS = ("sweep", "incident", "gate_run", "gate_skipped", "anchor", "checkpoint", "ansible_run", "backup", "restore",
         "drill", "engine_upgrade")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    time TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_kind ON records(kind, seq);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
WHEN OLD.seq > (SELECT COALESCE(MAX(json_extract(body, '$.upto')), 0) FROM records WHERE kind = 'checkpoint')
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only (only pruned ranges may be deleted)'); END;
CREATE VIEW IF NOT EXISTS sweeps AS
SELECT seq, time, json_extract(body, '$.id') AS sweep_id, json_extract(body, '$.passed') AS passed,
       json_extract(body, '$.durationSeconds') AS duration_seconds, body FROM records WHERE kind = 'sweep';
CREATE VIEW IF NOT EXISTS findings AS
SELECT r.seq AS sweep_seq, r.time AS time, json_extract(r.body, '$.id') AS sweep_id,
       json_extract(f.value, '$.id') AS rule, json_extract(f.value, '$.severity') AS severity,
       json_extract(f.value, '$.control') AS control, json_extract(f.value, '$.resource') AS resource,
       json_extract(f.value, '$.message') AS message
FROM records r, json_each(r.body, '$.findings') f WHERE r.kind = 'sweep';
CREATE VIEW IF NOT EXISTS incidents AS
SELECT seq, time, json_extract(body, '$.incident') AS incident, json_extract(body, '$.event') AS event,
       json_extract(body, '$.rule') AS rule, json_extract(body, '$.resource') AS resource,
       json_extract(body, '$.firstSeen') AS first_seen, json_extract(body, '$.lastSeen') AS last_seen
FROM records WHERE kind = 'incident';
CREATE VIEW IF NOT EXISTS gate_runs AS
SELECT seq, time, kind, json_extract(body, '$.passed') AS passed, json_extract(body, '$.reason') AS reason,
       body
FROM records WHERE kind IN ('gate_run', 'gate_skipped');
CREATE VIEW IF NOT EXISTS anchors AS
SELECT seq, time, json_extract(body, '$.seq') AS anchored_seq, json_extract(body, '$.hash') AS anchored_hash,
       json_extract(body, '$.ok') AS ok, body FROM records WHERE kind = 'anchor';
"""


def default_path(network: str, state_override: Path | None = None, settings: Settings | None = None) -> Path:
    """``HCOPS_AUDIT_DB``, else ``audit.db`` in the network's state folder."""
    settings = resolve(settings)
    if settings.audit_db is not None:
        return settings.audit_db
    return network_dir(network, state_override, settings) / "audit.db"


class AuditLog:
    """``AuditLog(path)``; every ``append`` is one transaction that links to the current head."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        if not create and not path.exists():
            raise InvalidInput(f"no audit log at {path}", hint="run `hcops audit` first, or pass --audit-db")
        try:
            # The state folder it usually lives in must be 0700 like the keys beside it.
            make_dirs(path.parent, private=True)
            self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise EnvironmentProblem(f"cannot open the audit log {path}: {exc}") from None

    @property
    def head_file(self) -> Path:
        return self.path.with_name(self.path.name + ".head")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _head(self, db: sqlite3.Connection) -> tuple[int, str]:
        row = db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def head(self) -> tuple[int, str]:
        return self._head(self._db)

    def append_many(
        self, entries: Sequence[tuple[str, Mapping[str, Any]]], now: dt.datetime | None = None
    ) -> list[Record]:
        """Append several records atomically: all of them or none."""
        out: list[Record] = []
        with self._transaction() as db:
            seq, prev = self._head(db)
            for kind, body in entries:
                if kind not in KINDS:
                    raise ValueError(f"unknown record kind {kind!r}")
                seq += 1
                time = clock.now_text(now)
                plain: dict[str, Any] = json.loads(canonical(body))
                digest = record_hash(seq, kind, time, plain, prev)
                db.execute(
                    "INSERT INTO records (seq, kind, time, body, prev_hash, hash) VALUES (?,?,?,?,?,?)",
                    (seq, kind, time, canonical(plain), prev, digest),
                )
                out.append(Record(seq, kind, time, plain, prev, digest))
                prev = digest
            self._write_head(seq, prev)
        return out

    def append(self, kind: str, body: Mapping[str, Any], now: dt.datetime | None = None) -> Record:
        return self.append_many([(kind, body)], now)[0]

    def _write_head(self, seq: int, digest: str) -> None:
        tmp = self.head_file.with_suffix(".tmp")
        tmp.write_text(f"{seq} {digest}\n")
        os.replace(tmp, self.head_file)

    def _read_head(self) -> tuple[int, str] | None:
        try:
            seq, digest = self.head_file.read_text().split()
            return int(seq), digest
        except (OSError, ValueError):
            return None

    def records(
        self,
        kind: str | None = None,
        *,
        since_seq: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Record]:
        sql = "SELECT seq, kind, time, body, prev_hash, hash FROM records WHERE seq > ?"
        args: list[Any] = [since_seq]
        if kind:
            sql += " AND kind = ?"
            args.append(kind)
        sql += " ORDER BY seq DESC" if newest_first else " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_row(r) for r in self._db.execute(sql, args)]

    def last(self, kind: str) -> Record | None:
        rows = self.records(kind, limit=1, newest_first=True)
        return rows[0] if rows else None

    def record(self, seq: int) -> Record | None:
        row = self._db.execute(
            "SELECT seq, kind, time, body, prev_hash, hash FROM records WHERE seq = ?", (seq,)
        ).fetchone()
        return _row(row) if row else None

    def daily(self, days: int, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Sweeps per UTC day over the last ``days``: count, failed, peak open findings by severity."""
        since = clock.now_text((now or clock.now()) - dt.timedelta(days=days))
        rows = self._db.execute(
            "SELECT substr(time, 1, 10) AS day, COUNT(*), SUM(json_extract(body, '$.passed') = 0),"
            " MAX(COALESCE(json_extract(body, '$.summary.bySeverity.high'), 0)),"
            " MAX(COALESCE(json_extract(body, '$.summary.bySeverity.medium'), 0)),"
            " MAX(COALESCE(json_extract(body, '$.summary.bySeverity.low'), 0))"
            " FROM records WHERE kind = 'sweep' AND time >= ? GROUP BY day ORDER BY day",
            (since,),
        )
        return [
            {"day": r[0], "sweeps": r[1], "failed": r[2] or 0, "high": r[3], "medium": r[4], "low": r[5]} for r in rows
        ]

    def sweeps_with(self, rule: str, resource: str, since: str) -> int:
        """How many sweeps since ``since`` had the finding ``rule`` on ``resource`` (an incident's length)."""
        row = self._db.execute(
            "SELECT COUNT(DISTINCT sweep_seq) FROM findings WHERE rule = ? AND resource = ? AND time >= ?",
            (rule, resource, since),
        ).fetchone()
        return int(row[0] or 0)

    def verify(self) -> Verification:
        rows = self._db.execute("SELECT seq, kind, time, body, prev_hash, hash FROM records ORDER BY seq")
        return verify_records((_row(r) for r in rows), expected_head=self._read_head())

    def prune(self, retention_days: int, now: dt.datetime | None = None) -> int:
        """Delete records older than the retention; a checkpoint record keeps the chain verifiable.
        Returns the number of records deleted."""
        cutoff = clock.now_text((now or clock.now()) - dt.timedelta(days=retention_days))
        with self._transaction() as db:
            row = db.execute(
                "SELECT MAX(seq) FROM records WHERE time < ? AND kind != 'checkpoint'", (cutoff,)
            ).fetchone()
            upto = int(row[0] or 0)
            latest = db.execute(
                "SELECT body FROM records WHERE kind = 'checkpoint' ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            before: dict[str, Any] = json.loads(latest[0]) if latest else {}
            if upto <= int(before.get("upto", 0)):
                return 0
            last = db.execute("SELECT hash FROM records WHERE seq = ?", (upto,)).fetchone()
            count = db.execute("SELECT COUNT(*) FROM records WHERE seq <= ?", (upto,)).fetchone()[0]
            seq, prev = self._head(db)
            body = {
                "upto": upto,
                "lastHash": str(last[0]),
                "cutoff": cutoff,
                "retentionDays": retention_days,
                "pruned": int(count),
                "prunedTotal": int(before.get("prunedTotal", 0)) + int(count),
            }
            time = clock.now_text(now)
            digest = record_hash(seq + 1, "checkpoint", time, body, prev)
            db.execute(
                "INSERT INTO records (seq, kind, time, body, prev_hash, hash) VALUES (?,?,?,?,?,?)",
                (seq + 1, "checkpoint", time, canonical(body), prev, digest),
            )
            db.execute("DELETE FROM records WHERE seq <= ?", (upto,))
            self._write_head(seq + 1, digest)
        return int(count)


def _row(r: tuple[Any, ...]) -> Record:
    return Record(seq=int(r[0]), kind=str(r[1]), time=str(r[2]), body=json.loads(r[3]), prev=str(r[4]), hash=str(r[5]))


def record_gate_run(
    path: Path,
    *,
    network: str,
    passed: bool,
    summary: Mapping[str, Any],
    findings: Sequence[Mapping[str, Any]] = (),
    waived: Sequence[Mapping[str, Any]] = (),
    environment: str | None = None,
    command: str = "check",
    spec_hash: str | None = None,
    skipped_reason: str | None = None,
    pack: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
) -> Record:
    """For the gate and ``apply``: record one gate run, or (``skipped_reason``) a ``--skip-gate`` by the user
    ``settings`` names."""
    body: dict[str, Any] = {
        "network": network,
        "environment": environment,
        "command": command,
        "specHash": spec_hash,
        "passed": passed,
        "summary": dict(summary),
        "findings": [dict(f) for f in findings],
        "waived": [dict(w) for w in waived],
    }
    if pack is not None:  # the built-in pack's digest and rules evaluated per package
        body["pack"] = dict(pack)
    kind = "gate_run"
    if skipped_reason is not None:
        kind = "gate_skipped"
        body["reason"] = skipped_reason
        body["user"] = resolve(settings).user
    with AuditLog(path) as log:
        return log.append(kind, body)

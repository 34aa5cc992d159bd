"""Incidents: a finding (rule x resource) that appears, persists over sweeps and clears is one incident
with first-seen and last-seen times. Opened and cleared events are audit log records; the open set is
rebuilt from them on start."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hcops.audit.chain import Record


def finding_key(f: Mapping[str, Any]) -> str:
    return f"{f['id']}|{f['resource']}"


@dataclass(frozen=True)
class Incident:
    id: str
    rule: str
    resource: str
    control: str
    severity: str
    message: str
    first_seen: str
    last_seen: str
    first_sweep: str
    last_sweep: str
    sweeps: int = 1
    cleared: str | None = None

    @property
    def key(self) -> str:
        return f"{self.rule}|{self.resource}"

    @property
    def open(self) -> bool:
        return self.cleared is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident": self.id,
            "rule": self.rule,
            "resource": self.resource,
            "control": self.control,
            "severity": self.severity,
            "message": self.message,
            "firstSeen": self.first_seen,
            "lastSeen": self.last_seen,
            "firstSweep": self.first_sweep,
            "lastSweep": self.last_sweep,
            "sweeps": self.sweeps,
            "cleared": self.cleared,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Incident:
        return cls(
            id=d["incident"],
            rule=d["rule"],
            resource=d["resource"],
            control=d.get("control", ""),
            severity=d.get("severity", ""),
            message=d.get("message", ""),
            first_seen=d["firstSeen"],
            last_seen=d["lastSeen"],
            first_sweep=d.get("firstSweep", ""),
            last_sweep=d.get("lastSweep", ""),
            sweeps=int(d.get("sweeps", 1)),
            cleared=d.get("cleared"),
        )


@dataclass(frozen=True)
class Changes:
    opened: tuple[Incident, ...] = ()
    persisting: tuple[Incident, ...] = ()
    cleared: tuple[Incident, ...] = ()

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """Log records: one per opened and per cleared incident."""
        return [("incident", {"event": "opened", **i.to_dict()}) for i in self.opened] + [
            ("incident", {"event": "cleared", **i.to_dict()}) for i in self.cleared
        ]


@dataclass
class Tracker:
    open: dict[str, Incident] = field(default_factory=dict)  # by key

    @classmethod
    def from_records(cls, records: Iterable[Record], last_sweep: Record | None = None) -> Tracker:
        t = cls()
        for r in records:
            inc = Incident.from_dict(r.body)
            if r.body.get("event") == "opened":
                t.open[inc.key] = inc
            elif r.body.get("event") == "cleared":
                t.open.pop(inc.key, None)
        if last_sweep is not None:  # open incidents persisted at least until the last sweep
            keys = {finding_key(f) for f in last_sweep.body.get("findings", [])}
            sid, time = (
                str(last_sweep.body.get("id", "")),
                str(last_sweep.body.get("finished", last_sweep.time)),
            )
            t.open = {
                k: replace(i, last_seen=time, last_sweep=sid) if k in keys else i for k, i in t.open.items()
            }
        return t

    def update(self, findings: Iterable[Mapping[str, Any]], *, sweep_id: str, time: str) -> Changes:
        current = {finding_key(f): f for f in findings}
        opened, persisting, cleared = [], [], []
        for key, f in sorted(current.items()):
            inc = self.open.get(key)
            if inc is None:
                iid = "inc-" + hashlib.sha256(f"{key}|{sweep_id}".encode()).hexdigest()[:12]
                inc = Incident(
                    id=iid,
                    rule=f["id"],
                    resource=f["resource"],
                    control=f.get("control", ""),
                    severity=f.get("severity", ""),
                    message=f.get("message", ""),
                    first_seen=time,
                    last_seen=time,
                    first_sweep=sweep_id,
                    last_sweep=sweep_id,
                )
                opened.append(inc)
            else:
                inc = replace(
                    inc,
                    last_seen=time,
                    last_sweep=sweep_id,
                    sweeps=inc.sweeps + 1,
                    message=f.get("message", inc.message),
                    severity=f.get("severity", inc.severity),
                )
                persisting.append(inc)
            self.open[key] = inc
        for key in sorted(set(self.open) - set(current)):
            cleared.append(replace(self.open.pop(key), cleared=time))
        return Changes(tuple(opened), tuple(persisting), tuple(cleared))

    def preview(
        self, findings: Iterable[Mapping[str, Any]], *, sweep_id: str, time: str
    ) -> tuple[Tracker, Changes]:
        """The update applied to a copy (so that a discarded sweep leaves the tracker untouched)."""
        copy = Tracker(dict(self.open))
        return copy, copy.update(findings, sweep_id=sweep_id, time=time)

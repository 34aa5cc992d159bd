"""``spec.backup.schedule``: a cron expression (five fields, or ``@daily`` and friends) read with croniter.

The spec's own pattern only checks the shape; :func:`validate` is the full check (field ranges, names),
and :func:`interval` is what the runtime rule calls "the schedule's interval": the longest gap between
two consecutive runs over the next few weeks (for ``0 2 * * 1-5`` that is the weekend gap, 3 days), so
that a schedule with uneven gaps never looks overdue on the long ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from croniter import croniter

from hcops.clock import Clock, now
from hcops.errors import HcopsError, InvalidInput

if TYPE_CHECKING:
    from hcops.audit.log import AuditLog
    from hcops.plan.desired import NetworkPlan

SAMPLES = 64  # consecutive runs looked at for the longest gap
UTC = dt.UTC


def validate(expression: str) -> str | None:
    """None when croniter accepts ``expression`` as a five-field schedule, else why not."""
    if not croniter.is_valid(expression):
        return "not a valid cron schedule (minute hour day-of-month month day-of-week, or @daily ...)"
    fields = expression.split()
    if not expression.startswith("@") and len(fields) != 5:
        return f"expected five fields (minute hour day-of-month month day-of-week), got {len(fields)}"
    return None


@dataclass(frozen=True)
class Schedule:
    expression: str

    def __post_init__(self) -> None:
        problem = validate(self.expression)
        if problem:
            raise InvalidInput(f"spec.backup.schedule {self.expression!r}: {problem}")

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        nxt: dt.datetime = croniter(self.expression, moment.astimezone(UTC)).get_next(dt.datetime)
        return nxt.astimezone(UTC)

    def previous_before(self, moment: dt.datetime) -> dt.datetime:
        prev: dt.datetime = croniter(self.expression, moment.astimezone(UTC)).get_prev(dt.datetime)
        return prev.astimezone(UTC)

    def interval(self, start: dt.datetime | None = None) -> dt.timedelta:
        it = croniter(self.expression, (start or now()).astimezone(UTC))
        runs = [it.get_next(dt.datetime) for _ in range(SAMPLES)]
        return max(b - a for a, b in zip(runs, runs[1:], strict=False))

    def due(self, last_run: dt.datetime | None, now: dt.datetime) -> bool:
        """Whether a run is due: a scheduled time has passed since ``last_run`` (or since the loop started:
        callers pass their start time when nothing ran yet)."""
        if last_run is None:
            return True
        return self.next_after(last_run) <= now


class ScheduledBackups:
    """Backups on ``spec.backup.schedule`` inside a long-running loop (``hcops audit --watch``): each
    scheduled time after the loop started runs once, at the first tick after it. A time missed while no
    loop ran is not made up on start (starting a watch never stops a node by surprise): it shows as a
    stale ``hcops_backup_last_success_timestamp`` and, past two intervals, as HC-RT-CP1-BACKUP-OVERDUE.
    Every run, and every failure, is recorded in the audit log."""

    def __init__(self, plan: NetworkPlan, log: AuditLog, schedule: Schedule,
                 clock: Clock | None = None) -> None:
        self.plan, self.log, self.schedule = plan, log, schedule
        self.clock = clock or now
        self.done = self.schedule.previous_before(self.clock())  # the latest scheduled time already covered

    @classmethod
    def of(cls, plan: NetworkPlan, log: AuditLog) -> ScheduledBackups | None:
        spec = plan.consortium.spec.backup
        if not spec.enabled or not spec.schedule:
            return None
        return cls(plan, log, Schedule(spec.schedule))

    def tick(self, emit: Callable[[Mapping[str, Any]], None]) -> bool:
        """Run the backup when a scheduled time has passed since the last covered one; True if it ran."""
        now = self.clock()
        slot = self.schedule.previous_before(now)
        if self.done >= slot:
            return False
        self.done = now
        self._run(emit)
        return True

    def _run(self, emit: Callable[[Mapping[str, Any]], None]) -> None:
        from hcops.backup import evidence
        from hcops.backup.backend import backend_for
        from hcops.backup.service import BackupOptions, run_backup
        from hcops.providers.state import network_lock

        emit({"event": "backup_started", "network": self.plan.name, "schedule": self.schedule.expression})
        try:
            with network_lock(self.plan.state_dir, self.plan.name):
                made = run_backup(self.plan, backend_for(self.plan), self.log, BackupOptions(), lambda _m: None,
                                  self.clock)
        except HcopsError as exc:
            if not evidence.backups(self.log) or evidence.backups(self.log)[-1].ok:  # not yet recorded
                evidence.record(self.log, "backup", {"ok": False, "network": self.plan.name, "node": "",
                                                     "error": exc.message})
            emit({"event": "backup_failed", "network": self.plan.name, "error": exc.message})
            return
        for m in made:
            emit({"event": "backup_finished", "network": self.plan.name, "id": m.id, "node": m.node,
                  "height": m.height, "sha256": m.sha256})

"""Server-side apply conflicts (HTTP 409): which fields, which other managers, and whether those managers
were imperative edits (``operation: Update`` — kubectl edit/patch/set/scale: drift that hcops may take
back) or another declarative owner (``operation: Apply`` — never overwritten)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hcops.errors import ExitCode, HcopsError
from hcops.providers.kubernetes.api import ApiError, Ref

_MANAGER = re.compile(r'conflicts? with "([^"]+)"')
_NAMED_ITEM = re.compile(r'\[name="([^"]+)"\]')


class ApplyConflict(HcopsError):
    """Another field manager owns fields hcops declares. Exit 1: a check, not a crash."""

    exit_code = ExitCode.CHECK_FAILED


@dataclass(frozen=True)
class Conflict:
    field: str
    manager: str
    operation: str  # Apply | Update | "" (unknown)

    @property
    def imperative(self) -> bool:
        return self.operation == "Update"

    def __str__(self) -> str:
        how = {"Update": "edited by", "Apply": "applied by"}.get(self.operation, "owned by")
        return f"{self.field} ({how} {self.manager})"


def conflicts(err: ApiError, live: Mapping[str, Any] | None) -> tuple[Conflict, ...]:
    ops: dict[str, str] = {}
    for m in ((live or {}).get("metadata") or {}).get("managedFields") or ():
        name, op = str(m.get("manager", "")), str(m.get("operation", ""))
        # A manager that both applied and updated counts as declarative: do not take its fields.
        if ops.get(name) != "Apply":
            ops[name] = op
    out = []
    for cause in err.causes or ({"message": err.message, "field": ""},):
        found = _MANAGER.search(str(cause.get("message", "")))
        manager = found.group(1) if found else "another manager"
        out.append(Conflict(field_path(str(cause.get("field", ""))), manager, ops.get(manager, "")))
    return tuple(out)


def field_path(server_path: str) -> str:
    """The server's ``.spec.containers[name="x"].image`` as diffs write it: ``spec.containers[x].image``."""
    return _NAMED_ITEM.sub(r"[\1]", server_path).lstrip(".")


def conflict_error(ref: Ref, found: tuple[Conflict, ...], *, revert_drift: bool) -> ApplyConflict:
    listed = "; ".join(str(c) for c in found)
    if any(not c.imperative for c in found):
        hint = (
            "another tool manages these fields with server-side apply: remove them from its manifests, "
            "or take them over on purpose with `kubectl apply --server-side --force-conflicts "
            "--field-manager=hcops`"
        )
    elif not revert_drift:
        hint = "provider.kubernetes.revertDrift is false: undo the edit, or set it true to let apply undo it"
    else:
        hint = None
    return ApplyConflict(f"{ref}: fields owned by another field manager: {listed}", hint=hint)

"""The hash chain of the audit log: canonical JSON, record hashes, and verification of a record sequence.

Every record's hash covers its sequence number, kind, time, body and the previous record's hash, so
editing, inserting or deleting any record breaks the link of the next one (or its own hash).
Pruned prefixes are replaced by a checkpoint record that names the last pruned record's hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text: the one serialisation that is hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_hash(seq: int, kind: str, time: str, body: Mapping[str, Any], prev: str) -> str:
    doc = {"seq": seq, "kind": kind, "time": time, "body": body, "prev": prev}
    return hashlib.sha256(canonical(doc).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Record:
    seq: int
    kind: str
    time: str
    body: dict[str, Any]
    prev: str
    hash: str

    def computed_hash(self) -> str:
        return record_hash(self.seq, self.kind, self.time, self.body, self.prev)


@dataclass(frozen=True)
class Break:
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"record {self.seq}: {self.reason}"


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int
    head_seq: int
    head_hash: str
    first_seq: int
    pruned_upto: int
    breaks: tuple[Break, ...]

    @property
    def first_break(self) -> Break | None:
        return self.breaks[0] if self.breaks else None


def verify_records(
    records: Iterable[Record], *, expected_head: tuple[int, str] | None = None
) -> Verification:
    """Walk the records in sequence order; every problem found is a ``Break`` (the first one names the
    first bad record). ``expected_head`` is the last (seq, hash) written, kept beside the log, which
    catches records deleted from the end."""
    rows = list(records)
    breaks: list[Break] = []
    checkpoint = _latest_checkpoint(rows)
    pruned_upto = int(checkpoint.body.get("upto", 0)) if checkpoint else 0
    expected_prev = str(checkpoint.body.get("lastHash", GENESIS)) if checkpoint else GENESIS
    expected_seq = pruned_upto + 1
    prev_hash = ""
    for i, r in enumerate(rows):
        if i == 0:
            if r.seq != expected_seq:
                breaks.append(
                    Break(
                        r.seq,
                        f"the log starts at record {r.seq}, expected {expected_seq} "
                        "(records were deleted or inserted at the start)",
                    )
                )
            elif r.prev != expected_prev:
                what = "the checkpoint of pruned records" if checkpoint else "the start of the log"
                breaks.append(Break(r.seq, f"its previous-hash does not match {what}"))
        else:
            if r.seq != rows[i - 1].seq + 1:
                breaks.append(
                    Break(
                        r.seq,
                        f"sequence jumps from {rows[i - 1].seq} to {r.seq} "
                        "(a record was deleted or inserted)",
                    )
                )
            if r.prev != prev_hash:
                breaks.append(
                    Break(
                        r.seq,
                        f"its previous-hash does not match record {rows[i - 1].seq} "
                        "(a record before it was edited, inserted or deleted)",
                    )
                )
        if r.computed_hash() != r.hash:
            breaks.append(Break(r.seq, "content does not match its hash (the record was edited)"))
        prev_hash = r.hash
    head_seq, head_hash = (rows[-1].seq, rows[-1].hash) if rows else (pruned_upto, expected_prev)
    if expected_head is not None:
        seq, digest = expected_head
        if seq > head_seq:
            breaks.append(
                Break(
                    head_seq + 1,
                    f"records {head_seq + 1}..{seq} are missing from the end of the log "
                    "(the head file names a later record)",
                )
            )
        elif seq == head_seq and digest != head_hash:
            breaks.append(Break(seq, "the head hash differs from the one recorded beside the log"))
    breaks.sort(key=lambda b: b.seq)
    return Verification(
        ok=not breaks,
        records=len(rows),
        head_seq=head_seq,
        head_hash=head_hash,
        first_seq=rows[0].seq if rows else 0,
        pruned_upto=pruned_upto,
        breaks=tuple(breaks),
    )


def verify_segment(records: Iterable[Record], start_seq: int, start_hash: str) -> list[Break]:
    """Records appended after an already verified (``start_seq``, ``start_hash``): the cheap check a
    long-running audit makes before each sweep."""
    breaks: list[Break] = []
    seq, prev = start_seq, start_hash
    for r in records:
        if r.seq != seq + 1:
            breaks.append(
                Break(r.seq, f"sequence jumps from {seq} to {r.seq} (a record was deleted or inserted)")
            )
        if r.prev != prev:
            breaks.append(Break(r.seq, f"its previous-hash does not match record {seq}"))
        if r.computed_hash() != r.hash:
            breaks.append(Break(r.seq, "content does not match its hash (the record was edited)"))
        seq, prev = r.seq, r.hash
    return breaks


def _latest_checkpoint(rows: list[Record]) -> Record | None:
    marks = [r for r in rows if r.kind == "checkpoint" and isinstance(r.body.get("upto"), int)]
    return max(marks, key=lambda r: int(r.body["upto"]), default=None)

"""The seal on the built-in policy pack: user policies and data cannot reach into it, and a gate that
evaluated less than the shipped pack fails closed.

Rego merges every module and data document into one ``data`` tree, so a user file declaring
``package hcops.hipaa.lib`` (or a data file with an ``hcops`` key) would extend or override the
built-in rules and helpers. The names below are therefore reserved for hcops: a user module or data
document under any of them is rejected before anything is evaluated.

The shipped pack's inventory (``policies/pack.json``: the digest of its files and the rule ids of each
package) is what a gate run is compared against. ``HCOPS_POLICY_DIR`` may point the gate at another
built-in pack (a newer one under test, say), but one that lacks a package or a rule of the shipped pack
fails closed; every run records the digest it evaluated and whether it is the shipped one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hcops.errors import Diagnostic, InvalidInput, Location
from hcops.policy.metadata import RuleMeta
from hcops.policy.regosrc import scan
from hcops.policy.sources import RESERVED_ROOTS, RUNTIME_DIR, PolicyFile
from hcops.resources import bundled

MANIFEST_NAME = "pack.json"
REGENERATE = "python -m hcops.policy.seal > policies/pack.json"


@dataclass(frozen=True)
class PackManifest:
    """The shipped pack: digests of the gate and runtime parts, and rule ids per package."""

    gate_digest: str
    runtime_digest: str
    gate: Mapping[str, tuple[str, ...]]
    runtime: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class PackSeal:
    """What one gate run evaluated of the built-in pack."""

    digest: str
    shipped: bool  # the digest is the shipped pack's
    rules: Mapping[str, int] = field(default_factory=dict)  # package -> rules evaluated

    @property
    def total(self) -> int:
        return sum(self.rules.values())

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "shipped": self.shipped, "rulesEvaluated": dict(self.rules),
                "rulesTotal": self.total}


def _root(package: tuple[str, ...]) -> str:
    segs = package[1:] if package[:1] == ("data",) else package
    return segs[0] if segs else ""


def check_user_policies(files: Iterable[PolicyFile]) -> None:
    """Reject a user module (``--policy``) that declares a package under a reserved name."""
    diags: list[Diagnostic] = []
    for f in files:
        if f.builtin:
            continue
        info = scan(f.name, f.source)
        if info.package is None:
            diags.append(Diagnostic("no package declaration hcops can read (write `package <name>` "
                                    "with plain identifiers)", location=Location(f.name, 1)))
            continue
        if _root(info.package) in RESERVED_ROOTS:
            diags.append(Diagnostic(
                f"package {info.package_name} is reserved for the built-in policy pack; user policies "
                "may add rules under their own package (for example `package acme.hipaa`) but cannot "
                "define, extend or override built-in ones",
                location=Location(f.name, max(1, info.package_line)),
            ))
    if diags:
        raise InvalidInput("a user policy reaches into the built-in policy pack", diags)


def pack_digest(files: Sequence[PolicyFile], root: Path) -> str:
    """SHA-256 over the pack's non-test modules: each file's path below ``root`` and content digest."""
    h = hashlib.sha256()
    for f in sorted((f for f in files if f.builtin and not f.is_test), key=lambda f: _rel(f.path, root)):
        h.update(_rel(f.path, root).encode())
        h.update(b"\0")
        h.update(hashlib.sha256(f.source.encode("utf-8")).hexdigest().encode())
        h.update(b"\n")
    return h.hexdigest()


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def rules_per_package(metas: Iterable[RuleMeta], builtin_names: set[str]) -> dict[str, list[str]]:
    out: dict[str, set[str]] = {}
    for m in metas:
        if m.file in builtin_names:
            out.setdefault(m.package, set()).add(m.id)
    return {k: sorted(v) for k, v in sorted(out.items())}


def load_manifest(path: Path | None = None) -> PackManifest:
    """The shipped pack's manifest (``policies/pack.json`` of the installed hcops)."""
    path = path or bundled("policies") / MANIFEST_NAME
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return PackManifest(
            gate_digest=str(doc["gate"]["digest"]),
            runtime_digest=str(doc["runtime"]["digest"]),
            gate={str(k): tuple(map(str, v)) for k, v in doc["gate"]["packages"].items()},
            runtime={str(k): tuple(map(str, v)) for k, v in doc["runtime"]["packages"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # The manifest ships with hcops; without it the gate cannot know what it must evaluate.
        raise InvalidInput(f"the built-in policy pack's manifest {path} is missing or damaged ({exc})",
                           hint="reinstall hcops") from exc


def seal(
    files: Sequence[PolicyFile],
    metas: Sequence[RuleMeta],
    evaluated_packages: Iterable[str],
    *,
    builtin_dir: Path,
    expected: Mapping[str, Sequence[str]] | None,
    expected_digest: str | None,
) -> PackSeal:
    """Count what was evaluated of the built-in pack; fail closed when it is less than ``expected``.

    Without ``expected`` (a test pack) the run must still have evaluated at least one built-in rule.
    """
    builtin_names = {f.name for f in files if f.builtin}
    present = rules_per_package(metas, builtin_names)
    evaluated = set(evaluated_packages)
    counts = {pkg: len(ids) for pkg, ids in present.items() if pkg in evaluated}
    digest = pack_digest(files, builtin_dir)
    problems: list[Diagnostic] = []
    if not counts:
        problems.append(Diagnostic(f"no built-in rule was evaluated (built-in pack: {builtin_dir})"))
    for pkg, ids in sorted((expected or {}).items()):
        if pkg not in evaluated:
            problems.append(Diagnostic(f"package {pkg} of the shipped pack was not evaluated"))
            continue
        missing = sorted(set(ids) - set(present.get(pkg, ())))
        if missing:
            problems.append(Diagnostic(f"package {pkg} lacks {len(missing)} rule(s) of the shipped pack: "
                                       + ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")))
    if problems:
        raise InvalidInput(
            "the gate evaluated less than the built-in policy pack; it fails closed", problems,
            hint="unset HCOPS_POLICY_DIR to use the pack installed with hcops, or point it at a complete pack",
        )
    return PackSeal(digest=digest, shipped=expected_digest is not None and digest == expected_digest,
                    rules=counts)


def build_manifest(root: Path) -> dict[str, Any]:
    """The manifest of the pack at ``root`` (what ``policies/pack.json`` must hold); the runtime part is
    digested relative to ``runtime/``, as the audit loads it."""
    from hcops.policy.gate import load_policy_set

    out: dict[str, Any] = {}
    for part, base in (("gate", root), ("runtime", root / RUNTIME_DIR)):
        files, metas = load_policy_set(builtin_dir=base)
        names = {f.name for f in files}
        out[part] = {"digest": pack_digest(files, base), "packages": rules_per_package(metas, names)}
    return out


if __name__ == "__main__":  # pragma: no cover - the regeneration command (REGENERATE)
    print(json.dumps(build_manifest(bundled("policies")), indent=2, sort_keys=True))

#!/usr/bin/env python3
"""Write the policy input corpus from the Rego fixtures in policies/testdata_test.rego.

    python policies/testdata/generate.py [--opa PATH] [--check]

Outputs, next to this script:
    example/input.json                the compliant example input (prod overlay, tier production,
                                      image pinned by digest); passes the gate without findings
    example-dev/input.json            the same consortium in the dev environment (tier development),
                                      without a digest or most contacts; passes the gate with warnings
    violations/<RULE-ID>/input.json   one variant of the example per built-in rule, triggering it
    variants/<name>/input.json        further variants (other spellings of the same mistakes) for
                                      the differential test of the two engines

One directory per document: `opa test policies/` loads every JSON file below policies/ as data,
rooted at its directory, and documents sharing a directory would collide.

The fixtures are evaluated by the real OPA binary, the reference engine (found with --opa, then
$HCOPS_OPA, then ~/.cache/hcops/bin/opa, then `opa` on PATH). Without OPA the embedded engine
regopy is used instead. When both are available the script also checks that they compute the same
corpus. --check compares with the files on disk instead of writing them (exit 1 on a difference).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parent / "testdata_test.rego"
PACKAGE = "data.hcops.hipaa.testdata"
QUERY = (
    f'x := {{"example": {PACKAGE}.example, "example-dev": {PACKAGE}.example_dev, '
    f'"violations": {PACKAGE}.violations, "variants": {PACKAGE}.variants}}'
)
# Top-level key order of docs/policy-input.md.
KEY_ORDER = [
    "apiVersion", "kind", "metadata", "environment", "tier", "spec",
    "organizations", "nodes", "chain", "manifests",
]


def find_opa(explicit: str | None) -> str | None:
    candidates = [explicit, os.environ.get("HCOPS_OPA"), str(Path.home() / ".cache/hcops/bin/opa")]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    return shutil.which("opa")


def eval_opa(opa: str) -> dict[str, Any]:
    out = subprocess.run(
        [opa, "eval", "--strict-builtin-errors", "-d", str(FIXTURE), "-f", "json", QUERY],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)["result"][0]["bindings"]["x"]


def eval_regopy() -> dict[str, Any]:
    from regopy import Interpreter

    rego = Interpreter()
    rego.strict_built_in_errors = True
    rego.add_module(str(FIXTURE), FIXTURE.read_text())
    out = rego.query(QUERY)
    if not out.ok() or not out.results:
        raise SystemExit("regopy could not evaluate the fixtures")
    return out.results[0].bindings["x"]


def ordered(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc[k] for k in KEY_ORDER if k in doc} | {k: v for k, v in doc.items() if k not in KEY_ORDER}


def dump(doc: dict[str, Any]) -> str:
    return json.dumps(ordered(doc), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--opa", help="path to the opa binary")
    ap.add_argument("--check", action="store_true", help="compare with the files on disk, write nothing")
    args = ap.parse_args()

    opa = find_opa(args.opa)
    corpus = eval_opa(opa) if opa else eval_regopy()
    if opa:
        try:
            embedded = eval_regopy()
        except ImportError:
            embedded = None
        if embedded is not None and embedded != corpus:
            print("warning: regopy computes a different corpus from the fixtures than OPA", file=sys.stderr)

    files = {
        HERE / "example" / "input.json": dump(corpus["example"]),
        HERE / "example-dev" / "input.json": dump(corpus["example-dev"]),
    }
    for rule_id, doc in sorted(corpus["violations"].items()):
        files[HERE / "violations" / rule_id / "input.json"] = dump(doc)
    for name, doc in sorted(corpus["variants"].items()):
        files[HERE / "variants" / name / "input.json"] = dump(doc)

    existing = set(HERE.glob("violations/*/input.json")) | set(HERE.glob("variants/*/input.json"))
    stale = sorted(existing - set(files))
    if args.check:
        bad = [p for p, text in files.items() if not p.is_file() or p.read_text() != text] + stale
        for p in bad:
            print(f"out of date: {p.relative_to(HERE)}", file=sys.stderr)
        return 1 if bad else 0

    for p in stale:
        p.unlink()
        p.parent.rmdir()
    for p, text in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    print(f"wrote {len(files)} files with {'opa' if opa else 'regopy'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Hostile YAML through the real CLI (a subprocess: a segfault or a hang must fail the test, not pytest)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SMALL_SPEC


def _bomb() -> str:
    lines = ["x-lol:", "  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return SMALL_SPEC + "\n".join(lines) + "\n"


def _under_chain(text: str) -> str:
    return SMALL_SPEC.replace("    blockInterval: 1s\n", "    blockInterval: 1s\n    extra: " + text + "\n")


CASES = {  # name: (spec text, what the first error says)
    "alias bomb": (_bomb(), "values and keys, each alias counted"),
    "1,000 levels": (_under_chain("[" * 1000 + "]" * 1000), "nested more than 200 levels"),
    "30,000 levels": (_under_chain("[" * 30_000 + "]" * 30_000), "nested more than 200 levels"),
    "30,000 block levels": ("- " * 30_000 + "x\n", "nested more than 200 levels"),
    "python/object/apply on a list": (
        SMALL_SPEC.replace("metadata:\n", "metadata:\n  labels: !!python/object/apply:os.system [ls]\n"),
        "unsupported tag !!python/object/apply:os.system"),
    "invalid timestamp": (SMALL_SPEC.replace("signedOn: 2026-01-01", "signedOn: !!timestamp banana"),
                          "'banana' is not a valid !!timestamp"),
    "impossible timestamp": (SMALL_SPEC.replace("signedOn: 2026-01-01", "signedOn: !!timestamp 2026-99-99"),
                             "'2026-99-99' is not a valid !!timestamp"),
    "recursive alias": (SMALL_SPEC.replace("  organizations:\n", "  organizations: &orgs\n    - *orgs\n"),
                        "recursive alias *orgs"),
    "recursive merge": (SMALL_SPEC.replace("      baa: {signed: true, signedOn: 2026-01-01}",
                                           "      baa: &b {<<: *b, signed: true}"), "recursive alias *b"),
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_yaml_exits_2_with_a_position(tmp_path: Path, case: str) -> None:
    text, says = CASES[case]
    spec = tmp_path / "network.yaml"
    spec.write_text(text)
    r = subprocess.run([sys.executable, "-m", "hcops", "validate", "-f", str(spec)], capture_output=True,
                       text=True, timeout=30, cwd=tmp_path,
                       env={**os.environ, "HCOPS_STATE_DIR": str(tmp_path / "state")})
    output = r.stdout + r.stderr
    assert r.returncode == 2, output[-3000:]
    assert "Traceback" not in output and "internal error" not in output
    assert re.search(r"network\.yaml:\d+:\d+: error: invalid YAML: ", output), output[-3000:]
    assert says in output, output[-3000:]

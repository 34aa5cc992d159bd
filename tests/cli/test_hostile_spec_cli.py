"""Hostile specs through the real CLI (a subprocess): every reproducer of the security review exits 2 with the
position of the bad value and no traceback, and what hcops does render parses back to exactly the plan."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hcops.plan.desired import build_plan
from hcops.spec.loader import load_spec
from tests.conftest import SMALL_SPEC
from tests.render.test_injection import check_render_tree

ESC = "\x1b"
# FILE:LINE:COL: error: spec.path: ...
POSITIONED = re.compile(r"^(?P<file>[^\n]+):(?P<line>\d+):(?P<col>\d+): error: (?P<path>\S+): ", re.MULTILINE)


def hcops(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HCOPS_STATE_DIR": str(cwd / "state"), "HCOPS_AUDIT_DB": str(cwd / "audit.db"),
           "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "hcops", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def write_spec(folder: Path, text: str, name: str = "network.yaml") -> Path:
    spec = folder / name
    spec.write_text(text)
    return spec


def invalid(result: subprocess.CompletedProcess[str], path: str | None = None, line: int | None = None) -> str:
    """The output of a run that must have exited 2 without a traceback; with ``path``: positioned there."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    assert ESC not in output and "\u202e" not in output, "raw control characters echoed"
    if path is not None:
        where = [m for m in POSITIONED.finditer(output) if m.group("path") == path]
        assert where, f"no FILE:LINE:COL diagnostic for {path}: {output}"
        assert where[0].group("file").endswith("network.yaml")
        if line is not None:
            assert int(where[0].group("line")) == line, output
    return output


def line_of(text: str, fragment: str) -> int:
    return text[:text.index(fragment)].count("\n") + 1


# ------------------------------------------------------------------------------- 1. full-match patterns

TRAILING_NEWLINE = [
    ("name: small-net", 'name: "small-net\\n"', "metadata.name"),
    ("{name: a-val-0,", '{name: "a-val-0\\n",', "spec.organizations[0].nodes[0].name"),
    ("name: org-b", 'name: "org-b\\n"', "spec.organizations[1].name"),
    ("chainId: small-1", 'chainId: "small-1\\n"', "spec.chain.chainId"),
    ("image: cometbft/cometbft:v0.38.17", 'image: "cometbft/cometbft:v0.38.17\\n"', "spec.chain.image"),
    ('version: "0.38.17"', 'version: "0.38.17\\n"', "spec.chain.version"),
]


@pytest.mark.parametrize(("old", "new", "path"), TRAILING_NEWLINE, ids=[c[2] for c in TRAILING_NEWLINE])
def test_a_trailing_newline_is_not_a_valid_value(tmp_path: Path, old: str, new: str, path: str) -> None:
    text = SMALL_SPEC.replace(old, new, 1)
    spec = write_spec(tmp_path, text)
    invalid(hcops(tmp_path, "validate", "-f", str(spec)), path, line_of(text, new))


# ------------------------------------------------------------------------------- 2. injection by file name

@pytest.mark.parametrize("name", ["evil\n---\nkind: Pod.yaml", "evil\r\n---\r\nkind: Pod.yaml",
                                  "x\u2028---\u2028kind: Pod\x85.yaml"])
def test_a_hostile_file_name_cannot_add_a_yaml_document(tmp_path: Path, name: str) -> None:
    spec = write_spec(tmp_path, SMALL_SPEC, name)
    out = tmp_path / "out"
    result = hcops(tmp_path, "render", "--generate-keys", "-f", str(spec), "-o", str(out), "--state-dir", str(tmp_path / "state"))
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    if result.returncode == 2:  # refusing the name is a fine answer too
        return
    assert result.returncode == 0, output
    plan = build_plan(load_spec(spec), tmp_path / "state")
    check_render_tree(out, plan)


# ------------------------------------------------------------------------------- 3. environment names

@pytest.mark.parametrize("env", ["./prod", "../../x", "/abs/x", "prod/", "prod\n", "", "-prod", "a" * 64])
def test_an_environment_name_is_not_a_path(tmp_path: Path, env: str) -> None:
    spec = write_spec(tmp_path, SMALL_SPEC)
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "prod.yaml").write_text("spec: {}\n")
    (tmp_path / "environments" / "dev.yaml").write_text("spec: {}\n")
    output = invalid(hcops(tmp_path, "validate", "-f", str(spec), "--env", env))
    assert "invalid environment name" in output and "not a path" in output
    assert "known environments: dev, prod" in output


def test_an_overlay_linked_from_outside_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    spec = write_spec(project, SMALL_SPEC)
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text("spec: {tier: development}\n")
    (project / "environments").mkdir()
    (project / "environments" / "sneaky.yaml").symlink_to(elsewhere)
    output = invalid(hcops(project, "validate", "-f", str(spec), "--env", "sneaky"))
    assert "symbolic link to a file outside" in output


def test_the_dev_relaxation_needs_the_development_tier(tmp_path: Path) -> None:
    """Three validators are allowed in development only; an overlay at ./dev is not the dev tier."""
    spec = write_spec(tmp_path, SMALL_SPEC.replace("        - {name: d-val-0, role: validator, power: 10}\n", ""))
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "dev.yaml").write_text("spec: {}\n")
    (tmp_path / "environments" / "qa.yaml").write_text("spec: {tier: development}\n")
    invalid(hcops(tmp_path, "validate", "-f", str(spec), "--env", "./dev"))
    assert hcops(tmp_path, "validate", "-f", str(spec), "--env", "dev").returncode == 0
    assert hcops(tmp_path, "validate", "-f", str(spec), "--env", "qa").returncode == 0
    invalid(hcops(tmp_path, "validate", "-f", str(spec)), "spec.organizations")


# ------------------------------------------------------------------------------- 4/5. tier and break-glass

def test_production_without_break_glass_contacts_fails_the_gate(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SMALL_SPEC.replace("spec:\n", "spec:\n  tier: production\n", 1))
    result = hcops(tmp_path, "check", "-f", str(spec), "--format", "json", "--state-dir", str(tmp_path / "state"))
    assert result.returncode == 1, result.stdout + result.stderr
    findings = json.loads(result.stdout)["findings"]
    denied = {(f["id"], f["resource"]) for f in findings if f["level"] == "deny"}
    assert ("HC-AC3-BREAK-GLASS-MISSING-PROD", "org/org-a") in denied
    assert not any(f["id"] == "HC-AC3-BREAK-GLASS-MISSING" for f in findings)


# ------------------------------------------------------------------------------- 6. CORS origins

@pytest.mark.parametrize("origin", ["h*", "*.example.com", "https://*.example.com", "https://portal.example*",
                                    "portal.example", "https://portal.example/", "https://portal.example/path",
                                    "https://user@portal.example", "https://portal.example:99999", "null",
                                    "https://portal.example\n"])
def test_a_cors_origin_is_exact(tmp_path: Path, origin: str) -> None:
    text = SMALL_SPEC.replace("  organizations:", f"  network: {{rpc: {{cors: [{json.dumps(origin)}]}}}}\n"
                              "  organizations:")
    spec = write_spec(tmp_path, text)
    invalid(hcops(tmp_path, "validate", "-f", str(spec)), "spec.network.rpc.cors[0]", line_of(text, "network:"))


# ------------------------------------------------------------------------------- 7. docker subnet

@pytest.mark.parametrize("subnet", ["banana", "10.0.0.0/33", "10.0.0.5/24", "fd00::/64", "10.0.0.0/29",
                                    "127.0.0.0/8", "224.0.0.0/24"])
def test_a_bad_subnet_is_invalid_input_not_a_crash(tmp_path: Path, subnet: str) -> None:
    text = SMALL_SPEC.replace("  organizations:", f"  provider: {{docker: {{subnet: {json.dumps(subnet)}}}}}\n"
                              "  organizations:")
    spec = write_spec(tmp_path, text)
    line = line_of(text, "provider:")
    invalid(hcops(tmp_path, "validate", "-f", str(spec)), "spec.provider.docker.subnet", line)
    result = hcops(tmp_path, "render", "--generate-keys", "-f", str(spec), "-o", str(tmp_path / "out"))
    invalid(result, "spec.provider.docker.subnet", line)


def test_a_subnet_too_small_for_the_nodes_is_invalid_input(tmp_path: Path) -> None:
    more = "        - {name: d-obs-1, role: observer}\n        - {name: d-obs-2, role: observer}\n"
    text = SMALL_SPEC.replace("  organizations:", "  provider: {docker: {subnet: 10.9.0.0/28}}\n  organizations:")
    spec = write_spec(tmp_path, text + more)  # 7 nodes need 18 addresses, a /28 has 16
    output = invalid(hcops(tmp_path, "render", "--generate-keys", "-f", str(spec), "-o", str(tmp_path / "out")),
                     "spec.provider.docker.subnet", line_of(text, "provider:"))
    assert "7 nodes need 18 addresses" in output
    spec = write_spec(tmp_path, text)  # 5 nodes fit
    result = hcops(tmp_path, "render", "--generate-keys", "-f", str(spec), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    check_render_tree(tmp_path / "out", build_plan(load_spec(spec), tmp_path / "state"))


# ------------------------------------------------------------------------------- 8. terminal escapes

@pytest.mark.parametrize(("old", "new", "path"), [
    ("chainId: small-1", 'chainId: "\\e[31mred\\e[0m"', "spec.chain.chainId"),
    ("{name: a-val-0,", '{name: "\\e]0;pwned\\a",', "spec.organizations[0].nodes[0].name"),
    ("      baa: {signed: true, signedOn: 2026-01-01}\n",
     '      contact: {breakGlass: "call \\e[2J\\u202eme"}\n', "spec.organizations[0].contact.breakGlass"),
    ("  organizations:", '  "\\e[31mbogus": 1\n  organizations:', "spec.\\x1b[31mbogus"),
], ids=["chain-id", "node-name", "break-glass", "unknown-key"])
def test_escape_sequences_are_shown_escaped(tmp_path: Path, old: str, new: str, path: str) -> None:
    text = SMALL_SPEC.replace(old, new, 1)
    spec = write_spec(tmp_path, text)
    output = invalid(hcops(tmp_path, "validate", "-f", str(spec)), path, line_of(text, new.strip().split("\n")[0]))
    assert "\\x1b" in output


def test_an_escape_sequence_in_the_file_name_is_shown_escaped(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SMALL_SPEC.replace("chainId: small-1", "chainId: bad chain"), "net\x1b[2J.yaml")
    output = invalid(hcops(tmp_path, "validate", "-f", str(spec)))
    assert "net\\x1b[2J.yaml:" in output


# ------------------------------------------------------------------------------- 9. ansible

def test_ansible_variables_render_unsafe(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SMALL_SPEC)
    out = tmp_path / "out"
    result = hcops(tmp_path, "render", "--generate-keys", "-f", str(spec), "-o", str(out), "--target", "ansible")
    assert result.returncode == 0, result.stdout + result.stderr
    check_render_tree(out, build_plan(load_spec(spec), tmp_path / "state"), ("ansible",))
    assert 'cometbft_chain_id: !unsafe "small-1"' in (out / "ansible" / "group_vars" / "all.yaml").read_text()

"""`hcops init`: the scaffold validates and passes the gate in dev through the real CLI, refuses to overwrite,
rejects names that are not DNS-1123 labels, and asks on a terminal for what the options leave open."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hcops.spec.loader import load_spec
from tests.cli_helpers import run_cli

FILES = ["network.yaml", "environments/dev.yaml", "environments/staging.yaml", "environments/prod.yaml",
         "attestations.yaml", ".gitignore", ".github/workflows/hcops-gate.yml"]


def hcops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HCOPS_POLICY_DIR", "HCOPS_OPA_URL", "HCOPS_TEMPLATES_DIR")}
    env["HCOPS_STATE_DIR"] = str(cwd / "state")
    proc = subprocess.run([sys.executable, "-m", "hcops", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def validate_and_check(spec: Path, cwd: Path) -> None:
    v = hcops("validate", "-f", str(spec), "--env", "dev", cwd=cwd)
    assert v.returncode == 0, v.stderr
    c = hcops("check", "-f", str(spec), "--env", "dev", cwd=cwd)
    assert c.returncode == 0, c.stdout + c.stderr
    assert "gate passed (0 deny" in c.stdout


def test_default_scaffold_validates_and_passes_the_gate_in_dev(tmp_path: Path) -> None:
    r = hcops("init", "net", "--yes", "--name", "care-net", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    root = tmp_path / "net"
    for rel in FILES:
        assert (root / rel).is_file(), rel
        assert f"wrote net/{rel}" in r.stdout
    assert "4 organizations, 4 validators, provider docker" in r.stdout
    assert "note:" not in r.stderr  # 4 orgs x 1 validator: every environment validates
    validate_and_check(root / "network.yaml", tmp_path)

    for env, tier in (("dev", "development"), ("staging", "staging"), ("prod", "production")):
        tier_of = load_spec(root / "network.yaml", env).tier
        assert tier_of is not None and tier_of.value == tier
    spec = yaml.safe_load((root / "network.yaml").read_text())
    assert spec["metadata"]["name"] == "care-net"
    assert [o["name"] for o in spec["spec"]["organizations"]] == ["org-1", "org-2", "org-3", "org-4"]
    assert ".hcops/" in (root / ".gitignore").read_text().splitlines()
    attestations = (root / "attestations.yaml").read_text()
    assert yaml.safe_load(attestations) == {"attestations": []}
    for field in ("control: AC-3", "control: AC-4", "control: DR-1", "control: AZ-1", "statement:", "attestedBy:",
                  "attestedOn:", "expires:", "evidence:"):
        assert field in attestations, field
    workflow = yaml.safe_load((root / ".github/workflows/hcops-gate.yml").read_text())
    steps = " ".join(str(s.get("run", "")) for s in workflow["jobs"]["gate"]["steps"])
    assert 'hcops check -f "$SPEC"' in steps and "--format sarif" in steps
    assert workflow["jobs"]["gate"]["strategy"]["matrix"]["environment"] == ["staging", "prod"]


def test_named_organizations_on_kubernetes_pass_in_dev(tmp_path: Path) -> None:
    r = hcops("init", "k", "-y", "--name", "rx-net", "--org", "st-mary", "--org", "bluecross:payer",
              "--org", "cityrx:pharmacy", "--org", "state-health:regulator", "--validators-per-org", "2",
              "--provider", "kubernetes", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    spec = yaml.safe_load((tmp_path / "k/network.yaml").read_text())["spec"]
    assert [(o["name"], o["role"], len(o["nodes"])) for o in spec["organizations"]] == [
        ("st-mary", "provider", 2), ("bluecross", "payer", 2), ("cityrx", "pharmacy", 2),
        ("state-health", "regulator", 2)]
    assert spec["provider"] == {"type": "kubernetes", "kubernetes": {"namespace": "rx-net"}}
    validate_and_check(tmp_path / "k/network.yaml", tmp_path)


def test_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    assert hcops("init", "--yes", cwd=tmp_path).returncode == 0
    spec = tmp_path / "network.yaml"
    spec.write_text("# mine\n")
    (tmp_path / "environments/prod.yaml").unlink()
    r = hcops("init", "--yes", cwd=tmp_path)
    assert r.returncode == 2
    assert "refusing to overwrite 6 existing file(s)" in r.stderr and "network.yaml" in r.stderr
    assert "--force" in r.stderr
    assert spec.read_text() == "# mine\n" and not (tmp_path / "environments/prod.yaml").exists()  # nothing written
    r = hcops("init", "--yes", "--force", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "overwrote network.yaml" in r.stdout and "wrote environments/prod.yaml" in r.stdout
    assert spec.read_text().startswith("# The consortium spec")


def test_invalid_name_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    r = hcops("init", "x", "--yes", "--name", "Care_Net", cwd=tmp_path)
    assert r.returncode == 2
    assert "consortium name 'Care_Net' is not a DNS-1123 label" in r.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--org", "St-Mary"], "organization name 'St-Mary' is not a DNS-1123 label"),
    (["--org", "a", "--org", "-b"], "organization name '-b' is not a DNS-1123 label"),
    (["--org", "clinic:dentist"], "role 'dentist' is not one of provider, payer"),
    (["--org", "a", "--org", "a"], "organization 'a' is named twice"),
    (["--org", "a" * 60], "node name of organization"),
    (["--org", "a", "--orgs", "2"], "not both"),
    (["--orgs", "0"], "--orgs expects 1 to 100"),
    (["--validators-per-org", "0"], "--validators-per-org expects 1 to 50"),
    (["--name", "x" * 64], "is not a DNS-1123 label"),
])
def test_invalid_choices_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str],
                                message: str) -> None:
    r = run_cli(capsys, "init", str(tmp_path / "d"), "--yes", *args)
    assert r.code == 2 and message in r.err, r.err
    assert not (tmp_path / "d").exists()


def test_tiers_and_environments_that_do_not_validate_yet(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    r = run_cli(capsys, "init", str(tmp_path / "My Consortium"), "--yes", "--orgs", "2")
    assert r.code == 0, r.err
    spec = tmp_path / "My Consortium/network.yaml"
    loaded = load_spec(spec, "dev")
    assert loaded.consortium.name == "my-consortium"  # from the folder's name
    assert str(loaded.tier) == "development"
    # two validators are enough for dev only: init says so for staging and prod
    assert "note: --env staging does not validate yet" in r.err and "note: --env prod" in r.err
    assert "HC-CP1-POWER-CONCENTRATION" in r.err  # and the gate will deny it everywhere
    for env, tier in (("dev", "development"), ("staging", "staging"), ("prod", "production")):
        assert yaml.safe_load((tmp_path / f"My Consortium/environments/{env}.yaml").read_text())["spec"]["tier"] == tier


def test_asks_on_a_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from hcops.cli import cli
    from hcops.cli import init as cli_init

    monkeypatch.setattr(cli_init, "_interactive", lambda: True)
    answers = "lab-net\nacme, beta:laboratory, gamma:payer, delta\n1\ndocker\n"
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "q")], input=answers)
    assert result.exit_code == 0, result.output
    spec = load_spec(tmp_path / "q/network.yaml", "dev").consortium
    assert spec.name == "lab-net"
    assert [(o.name, o.role.value) for o in spec.spec.organizations] == [
        ("acme", "provider"), ("beta", "laboratory"), ("gamma", "payer"), ("delta", "provider")]

"""The wheel is complete: built from this checkout and installed in a fresh virtual environment, hcops finds
its policy pack, templates and control catalogue without the repository."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hcops.audit.catalogue import controls

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "regional-health-net" / "network.yaml"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(base / "dist"), str(ROOT)], check=True, cwd=base)
    (wheel,) = (base / "dist").glob("hcops-*.whl")
    # the dependencies come from this interpreter's site-packages; hcops itself only from the wheel
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(base / "venv")], check=True)
    py = base / "venv" / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    return base


def _hcops(base: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(base / "venv" / "bin" / "hcops"), *args], cwd=base, capture_output=True, text=True,
                          timeout=300)


def test_the_installed_package_is_the_wheel(venv: Path) -> None:
    out = subprocess.run([str(venv / "venv" / "bin" / "python"), "-c", "import hcops; print(hcops.__file__)"],
                         cwd=venv, capture_output=True, text=True, check=True).stdout
    assert str(venv / "venv") in out


def test_gate_render_and_rules_work_from_the_wheel(venv: Path) -> None:
    state = str(venv / "state")
    gate = _hcops(venv, "check", "-f", str(EXAMPLE), "--env", "dev", "--state-dir", state, "--format", "json")
    assert gate.returncode == 0, gate.stderr
    report = json.loads(gate.stdout)
    assert report["passed"] and report["summary"]["warn"] > 0
    rules = _hcops(venv, "policy", "list", "--output", "json")
    assert rules.returncode == 0, rules.stderr
    assert len(json.loads(rules.stdout)) >= 40
    render = _hcops(venv, "render", "-f", str(EXAMPLE), "--state-dir", state, "-o", str(venv / "out"), "--generate-keys")
    assert render.returncode == 0, render.stderr
    assert (venv / "out" / "docker" / "compose.yaml").is_file()
    assert list((venv / "out" / "kubernetes").glob("*.yaml"))
    catalogue = subprocess.run([str(venv / "venv" / "bin" / "python"), "-c",
                                "from hcops.audit.catalogue import controls; print(len(controls()))"],
                               cwd=venv, capture_output=True, text=True, check=True)
    assert int(catalogue.stdout) == len(controls())

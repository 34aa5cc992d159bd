from __future__ import annotations

import gc
import io
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from tests.cli_helpers import run_cli
from tests.conftest import EXAMPLE, SpecDir


def test_help_lists_only_working_commands(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_cli(capsys, "--help")
    assert r.code == 0
    for command in ("validate", "render", "schema", "version"):
        assert command in r.out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_cli(capsys, "version", "--output", "json")
    assert r.code == 0 and json.loads(r.out)["version"]


def test_the_program_skips_the_last_collection_and_a_caller_keeps_its_collector(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = gc.get_freeze_count()
    assert run_cli(capsys, "version").code == 0
    assert gc.get_freeze_count() == before  # main(argv): the caller goes on, nothing frozen
    probe = ("import atexit, gc, sys\n"
             "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
             "sys.argv = ['hcops', 'version']\n"
             "from hcops.cli import main\n"
             "main()\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "frozen True"


def test_validate_example_ok(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_cli(capsys, "validate", "-f", str(EXAMPLE))
    assert r.code == 0 and "valid" in r.out and "4 validators" in r.out


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_validate_example_envs_json(capsys: pytest.CaptureFixture[str], env: str) -> None:
    r = run_cli(capsys, "validate", "-f", str(EXAMPLE), "--env", env, "--output", "json")
    doc = json.loads(r.out)
    assert r.code == 0 and doc["valid"] is True and doc["environment"] == env and doc["nodes"] == 5


def test_validate_errors_exit_2_with_positions(capsys: pytest.CaptureFixture[str], spec_dir: SpecDir) -> None:
    spec_dir.write(spec_dir.spec.read_text().replace("power: 10}", "power: ten}", 1))
    r = run_cli(capsys, "validate", "-f", str(spec_dir.spec))
    assert r.code == 2
    assert 'error: spec.organizations[0].nodes[0].power: expected a positive integer, got "ten"' in r.err
    assert "Traceback" not in r.err + r.out


def test_validate_json_errors(capsys: pytest.CaptureFixture[str], spec_dir: SpecDir) -> None:
    spec_dir.write(spec_dir.spec.read_text().replace("power: 10}", "power: ten}", 1))
    r = run_cli(capsys, "validate", "-f", str(spec_dir.spec), "-o", "json")
    doc = json.loads(r.out)
    assert r.code == 2 and doc["valid"] is False
    assert doc["errors"][0]["line"] == 16 and doc["errors"][0]["path"] == "spec.organizations[0].nodes[0].power"


def test_overlay_effects_are_visible(capsys: pytest.CaptureFixture[str], spec_dir: SpecDir) -> None:
    spec_dir.overlay("bad", "spec:\n  chain: {blockInterval: never}\n")
    r = run_cli(capsys, "validate", "-f", str(spec_dir.spec), "--env", "bad")
    assert r.code == 2 and "environments/bad.yaml:2:" in r.err


def test_usage_error_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "validate").code == 2
    assert run_cli(capsys, "no-such-command").code == 2


def test_schema_validates_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_cli(capsys, "schema")
    schema = json.loads(r.out)
    jsonschema.Draft202012Validator.check_schema(schema)
    doc = YAML(typ="safe").load(EXAMPLE.read_text())
    doc["spec"]["organizations"][0]["baa"]["signedOn"] = str(doc["spec"]["organizations"][0]["baa"]["signedOn"])
    for org in doc["spec"]["organizations"]:
        if org.get("baa", {}).get("signedOn"):
            org["baa"]["signedOn"] = str(org["baa"]["signedOn"])
    jsonschema.validate(doc, schema)
    bad = json.loads(json.dumps(doc))
    bad["spec"]["network"]["rpc"]["exposure"] = "everywhere"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_internal_error_exit_3_names_log(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path))

    def boom(*_: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr("hcops.usecases.spec.load_spec", boom)
    r = run_cli(capsys, "validate", "-f", str(EXAMPLE))
    assert r.code == 3
    assert "internal error: RuntimeError: kaboom" in r.err and "details written to" in r.err
    assert "Traceback" not in r.err
    logs = list(tmp_path.glob("crash-*.log"))
    assert logs and "Traceback" in logs[0].read_text()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_apply_asks_on_a_terminal_and_reads_the_spec_once(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch, spec_dir: SpecDir,
                                                          state_dir: Path) -> None:
    from hcops.usecases import deploy
    from tests.providers.fake import FakeProvider

    fake = FakeProvider()
    monkeypatch.setattr(deploy, "get_provider", lambda name: fake)
    loads: list[object] = []
    real_load = deploy.load_spec
    monkeypatch.setattr(deploy, "load_spec", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    apply = ("apply", "-f", str(spec_dir.spec), "--skip-gate", "--reason", "confirmation test")

    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    r = run_cli(capsys, *apply)
    assert r.code == 1 and "apply these changes?" in r.err and "nothing applied" in r.err
    assert "a-val-0-data" in r.out and fake.applied == [] and len(loads) == 1

    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    r = run_cli(capsys, *apply)
    assert r.code == 0 and "applied: 11 created" in r.out and fake.applied == ["small-net"] and len(loads) == 2

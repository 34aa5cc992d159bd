"""hcops.settings: every variable hcops reads, resolved once by the CLI and handed down; hostile values are
refused naming the variable (exit 2)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
import pytest

from hcops import settings as settings_module
from hcops.cli.app import setting_option
from hcops.errors import ExitCode, InvalidInput
from hcops.resources import bundled
from hcops.settings import Settings, resolve
from tests.cli_helpers import run_cli
from tests.conftest import SpecDir

PATHS = {
    "HCOPS_STATE_DIR": "state_dir",
    "HCOPS_AUDIT_DB": "audit_db",
    "HCOPS_CACHE": "cache_dir",
    "HCOPS_POLICY_DIR": "policy_dir",
    "HCOPS_TEMPLATES_DIR": "templates_dir",
    "HCOPS_OPA_BIN": "opa_bin",
}


# ---------------------------------------------------------------------------------------- resolution
def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    s = Settings.from_env({})
    assert s == Settings()
    assert s.state_root() == Path(".hcops")
    assert s.cache == tmp_path / ".cache" / "hcops"
    assert s.policies == bundled("policies") and s.templates == bundled("templates")
    assert (s.opa_url, s.opa_token, s.engine, s.engine_timeout, s.engine_memory_mb, s.mrn_pattern) == (None,) * 6
    assert (s.kubeconfig, s.in_cluster, s.user) == ((), False, "")


@pytest.mark.parametrize(("name", "field"), PATHS.items())
def test_each_path_variable(name: str, field: str, tmp_path: Path) -> None:
    assert getattr(Settings.from_env({name: str(tmp_path / "x")}), field) == tmp_path / "x"


def test_the_defaults_each_variable_replaces(tmp_path: Path) -> None:
    s = Settings.from_env({"HCOPS_STATE_DIR": "st", "HCOPS_CACHE": "ca", "HCOPS_POLICY_DIR": "po",
                           "HCOPS_TEMPLATES_DIR": "te"})
    assert (s.state_root(), s.cache, s.policies, s.templates) == (Path("st"), Path("ca"), Path("po"), Path("te"))


def test_empty_means_unset() -> None:
    env = {name: "" for name in PATHS} | {"HCOPS_OPA_URL": "", "HCOPS_ENGINE_TIMEOUT": "", "USER": ""}
    assert Settings.from_env(env) == Settings()


def test_blank_and_home_for_the_opa_binary_and_the_policy_pack(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings.from_env({"HCOPS_OPA_BIN": "  ", "HCOPS_POLICY_DIR": " "}) == Settings()
    s = Settings.from_env({"HCOPS_OPA_BIN": " ~/bin/opa ", "HCOPS_POLICY_DIR": "~/pack"})
    assert (s.opa_bin, s.policy_dir) == (tmp_path / "bin" / "opa", tmp_path / "pack")
    # the other paths are taken as written, as they always were
    assert Settings.from_env({"HCOPS_STATE_DIR": "~/st"}).state_dir == Path("~/st")


def test_the_other_variables() -> None:
    s = Settings.from_env({"HCOPS_OPA_URL": "http://127.0.0.1:8181", "HCOPS_OPA_TOKEN": "t0k",
                           "HCOPS_ENGINE": "wasm", "HCOPS_ENGINE_TIMEOUT": "2.5", "HCOPS_ENGINE_MEMORY_MB": "128",
                           "HCOPS_MRN_PATTERN": r"MRN-\d+", "KUBECONFIG": f"a{os.pathsep}{os.pathsep}b",
                           "KUBERNETES_SERVICE_HOST": "10.0.0.1", "LOGNAME": "ops"})
    assert (s.opa_url, s.opa_token, s.engine, s.mrn_pattern) == ("http://127.0.0.1:8181", "t0k", "wasm", r"MRN-\d+")
    assert (s.engine_timeout, s.engine_memory_mb) == (2.5, 128)
    assert (s.kubeconfig, s.in_cluster, s.user) == ((Path("a"), Path("b")), True, "ops")
    assert Settings.from_env({"USER": "alice", "LOGNAME": "ops"}).user == "alice"
    assert "t0k" not in repr(s)  # a bearer token never lands in a log line or traceback


def test_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path))
    assert Settings.from_env().state_dir == tmp_path


def test_resolve_reads_the_environment_only_for_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    given = Settings(state_dir=tmp_path / "given")
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path / "env"))
    assert resolve(given) is given
    assert resolve(None).state_dir == tmp_path / "env"  # read at the call, not at import
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path / "later"))
    assert resolve(None).state_dir == tmp_path / "later"


# ---------------------------------------------------------------------------------------- hostile values
def _refused(env: dict[str, str]) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        Settings.from_env(env)
    assert info.value.exit_code == ExitCode.INVALID_INPUT
    return info.value


@pytest.mark.parametrize("name", [*PATHS, "KUBECONFIG", "HCOPS_OPA_URL"])
@pytest.mark.parametrize("bad", ["\n", "\0", "\r", "\x1b"])
def test_control_characters_are_refused_naming_the_variable(name: str, bad: str) -> None:
    exc = _refused({name: f"/tmp/a{bad}b"})
    assert exc.message.startswith(f"{name}: ") and "control characters" in exc.message
    assert bad not in exc.message and name in (exc.hint or "")  # shown escaped, never raw


def test_a_token_is_refused_without_showing_it() -> None:
    exc = _refused({"HCOPS_OPA_TOKEN": "secret\nvalue"})
    assert exc.message.startswith("HCOPS_OPA_TOKEN: ") and "secret" not in exc.message


@pytest.mark.parametrize(("name", "value"), [
    ("HCOPS_ENGINE_TIMEOUT", "abc"), ("HCOPS_ENGINE_TIMEOUT", "nan"), ("HCOPS_ENGINE_TIMEOUT", "0.5"),
    ("HCOPS_ENGINE_TIMEOUT", "30s"), ("HCOPS_ENGINE_MEMORY_MB", "12"), ("HCOPS_ENGINE_MEMORY_MB", "64.5"),
    ("HCOPS_ENGINE_MEMORY_MB", "lots"),
])
def test_unusable_numbers_are_refused_naming_the_variable(name: str, value: str) -> None:
    exc = _refused({name: value})
    assert exc.message.startswith(f"{name}: expected ") and repr(value) in exc.message


def test_a_long_value_is_shortened_in_the_message() -> None:
    exc = _refused({"HCOPS_ENGINE_TIMEOUT": "9" * 10_000 + "x"})
    assert len(exc.message) < 300 and "10001 characters" in exc.message


def test_numbers_as_the_options_read_them() -> None:
    s = Settings.from_env({"HCOPS_ENGINE_TIMEOUT": " 1e1 ", "HCOPS_ENGINE_MEMORY_MB": " 64 "})
    assert (s.engine_timeout, s.engine_memory_mb) == (10.0, 64)


# ---------------------------------------------------------------------------------------- the CLI boundary
@pytest.mark.parametrize(("name", "value"), [
    ("HCOPS_STATE_DIR", "state\nx"), ("HCOPS_AUDIT_DB", "a\tb"), ("HCOPS_ENGINE_TIMEOUT", "soon"),
    ("HCOPS_ENGINE_MEMORY_MB", "1"), ("HCOPS_ENGINE", "fast"),
])
def test_the_cli_refuses_a_hostile_variable_with_exit_2(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch, name: str,
                                                        value: str) -> None:
    monkeypatch.setenv(name, value)
    r = run_cli(capsys, "policy", "list")
    assert r.code == 2 and f"error: {name}: " in r.err and "Traceback" not in r.err + r.out


def test_the_cli_resolves_the_settings_once_and_hands_them_down(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, spec_dir: SpecDir,
        state_dir: Path, tmp_path: Path) -> None:
    calls: list[Any] = []
    original = Settings.from_env.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Settings], environ: Any = None) -> Settings:
        calls.append(environ)
        return original(cls, environ)

    monkeypatch.setattr(settings_module.Settings, "from_env", classmethod(counted))
    monkeypatch.setenv("HCOPS_AUDIT_DB", str(tmp_path / "gate.db"))
    out = tmp_path / "out"
    assert run_cli(capsys, "render", "-f", str(spec_dir.spec), "-o", str(out), "--generate-keys").code == 0
    assert (state_dir / "small-net" / "keys").is_dir() and (out / "docker" / "compose.yaml").is_file()
    r = run_cli(capsys, "check", "-f", str(spec_dir.spec), "--engine", "embedded", "--format", "json")
    assert r.code in (0, 1) and json.loads(r.out)["summary"]
    assert (tmp_path / "gate.db").is_file()  # the audit log the variable names
    assert len(calls) == 2 and all(c is os.environ for c in calls)  # once per command, at the boundary


def test_an_option_falls_back_to_its_setting() -> None:
    @click.command()
    @setting_option("--engine-timeout", setting="engine_timeout", type=click.FloatRange(min=1), default=300.0)
    def command(engine_timeout: float) -> float:
        return engine_timeout

    assert command.main([], obj=Settings(engine_timeout=5.0), standalone_mode=False) == 5.0
    assert command.main(["--engine-timeout", "7"], obj=Settings(engine_timeout=5.0), standalone_mode=False) == 7.0
    assert command.main([], obj=Settings(), standalone_mode=False) == 300.0

"""`hcops completion bash|zsh|fish`: the scripts, and completions answered through the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def hcops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.endswith("_COMPLETE")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "hcops", *args], env=full_env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize(("shell", "marker"), [
    ("bash", "complete -o nosort -F _hcops_completion hcops"),
    ("zsh", "#compdef hcops"),
    ("fish", "complete --no-files --command hcops"),
])
def test_prints_the_script(shell: str, marker: str) -> None:
    r = hcops("completion", shell)
    assert r.returncode == 0, r.stderr
    assert marker in r.stdout and "_HCOPS_COMPLETE" in r.stdout


def test_unknown_shell_is_a_usage_error() -> None:
    r = hcops("completion", "tcsh")
    assert r.returncode == 2 and "tcsh" in r.stderr


def test_answers_completion_requests() -> None:
    r = hcops(env={"_HCOPS_COMPLETE": "bash_complete", "COMP_WORDS": "hcops ini", "COMP_CWORD": "1"})
    assert r.returncode == 0 and r.stdout.split() == ["plain,init"]
    r = hcops(env={"_HCOPS_COMPLETE": "bash_complete", "COMP_WORDS": "hcops init --prov", "COMP_CWORD": "2"})
    assert r.stdout.split() == ["plain,--provider"]
    r = hcops(env={"_HCOPS_COMPLETE": "bash_complete", "COMP_WORDS": "hcops check --format ", "COMP_CWORD": "3"})
    assert {"plain,sarif", "plain,junit"} <= set(r.stdout.split())


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_script_completes_commands(tmp_path: Path) -> None:
    """The script as a user installs it (eval "$(hcops completion bash)"), calling `hcops` on PATH."""
    (tmp_path / "hcops").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hcops "$@"\n')
    (tmp_path / "hcops").chmod(0o755)
    script = ('eval "$(hcops completion bash)"; COMP_WORDS=(hcops completion ""); COMP_CWORD=2; '
              '_hcops_completion hcops; printf "%s\\n" "${COMPREPLY[@]}"')
    env = {k: v for k, v in os.environ.items() if not k.endswith("_COMPLETE")}
    env["PATH"] = f"{tmp_path}{os.pathsep}{env.get('PATH', '')}"
    r = subprocess.run(["bash", "--norc", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["bash", "zsh", "fish"]

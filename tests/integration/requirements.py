"""Finding the real engines. Under CI=true a missing engine fails the run; elsewhere the test skips."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def cache_dir() -> Path:
    return Path(os.environ.get("HCOPS_CACHE") or Path.home() / ".cache" / "hcops")


def unavailable(message: str) -> None:
    """Fail under CI=true (integration tests never skip there); skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required under CI=true: {message}", pytrace=False)
    pytest.skip(message)


def missing(what: str, component: str) -> None:
    unavailable(f"{what} is not available; run `scripts/bootstrap {component}`")


def binary(name: str, component: str) -> Path:
    candidate = cache_dir() / "bin" / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    missing(f"the {name} binary", component)
    raise AssertionError("unreachable")

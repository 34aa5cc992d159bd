"""Shared fixtures: the example spec, and small specs written into a temp folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "regional-health-net" / "network.yaml"

SMALL_SPEC = """\
apiVersion: hcops/v1alpha1
kind: Consortium
metadata:
  name: small-net
spec:
  chain:
    version: "0.38.17"
    image: cometbft/cometbft:v0.38.17
    chainId: small-1
    blockInterval: 1s
  organizations:
    - name: org-a
      role: provider
      baa: {signed: true, signedOn: 2026-01-01}
      nodes:
        - {name: a-val-0, role: validator, power: 10}
    - name: org-b
      role: payer
      nodes:
        - {name: b-val-0, role: validator, power: 10}
    - name: org-c
      role: pharmacy
      nodes:
        - {name: c-val-0, role: validator, power: 10}
    - name: org-d
      role: laboratory
      nodes:
        - {name: d-val-0, role: validator, power: 10}
        - {name: d-obs-0, role: observer}
"""


class SpecDir:
    """A spec file plus optional overlays in a temp folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.spec = root / "network.yaml"

    def write(self, text: str) -> Path:
        self.spec.write_text(textwrap.dedent(text))
        return self.spec

    def overlay(self, env: str, text: str) -> Path:
        path = self.root / "environments" / f"{env}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path


@pytest.fixture
def spec_dir(tmp_path: Path) -> SpecDir:
    d = SpecDir(tmp_path)
    d.write(SMALL_SPEC)
    return d


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv("HCOPS_STATE_DIR", str(folder))
    return folder

"""Golden files: the fixture spec renders to exactly the files under fixtures/golden/.

Key material (key files, Kubernetes Secrets) is not kept as golden files; test_render.py checks it against
the state folder instead. After an intended change, regenerate with:

    HCOPS_UPDATE_GOLDEN=1 python -m pytest tests/render/test_golden.py
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.render.helpers import GOLDEN, fixture_plan, is_key_material, render_all, tree


def test_render_matches_golden_files(tmp_path: Path) -> None:
    plan = fixture_plan(tmp_path / "state")
    out = tmp_path / "out"
    render_all(plan, out)
    rendered = {rel: data for rel, data in tree(out).items() if not is_key_material(rel)}
    if os.environ.get("HCOPS_UPDATE_GOLDEN") == "1":
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for rel, data in rendered.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_bytes(data)
    golden = tree(GOLDEN)
    assert sorted(rendered) == sorted(golden), "rendered files differ from fixtures/golden (see module doc)"
    for rel, data in rendered.items():
        assert data.decode() == golden[rel].decode(), f"{rel} differs from its golden file"

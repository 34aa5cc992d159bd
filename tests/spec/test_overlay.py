from __future__ import annotations

import pytest

from hcops.errors import InvalidInput
from hcops.spec.loader import load_spec
from tests.conftest import SpecDir


def test_maps_merge_deeply(spec_dir: SpecDir) -> None:
    spec_dir.overlay("x", "spec:\n  chain:\n    blockInterval: 250ms\n")
    c = load_spec(spec_dir.spec, "x").consortium
    assert c.spec.chain.block_interval.total_seconds() == 0.25
    assert c.spec.chain.chain_id == "small-1"  # untouched sibling survives


def test_named_lists_merge_by_name(spec_dir: SpecDir) -> None:
    spec_dir.overlay("x", """\
        spec:
          organizations:
            - name: org-d
              nodes:
                - {name: d-obs-0, resources: {cpu: "2", memory: 2Gi}}
            - name: org-a
              contact: {breakGlass: sec@a.example}
        """)
    c = load_spec(spec_dir.spec, "x").consortium
    assert [o.name for o in c.spec.organizations] == ["org-a", "org-b", "org-c", "org-d"]
    assert c.spec.organizations[0].contact is not None
    assert c.node("d-obs-0").resources.memory == "2Gi"
    assert c.node("d-val-0").power == 10  # sibling node untouched


def test_other_lists_replace(spec_dir: SpecDir) -> None:
    spec_dir.write(spec_dir.spec.read_text() + "  network:\n    rpc: {cors: [https://a.example, https://b.example]}\n")
    spec_dir.overlay("x", "spec:\n  network:\n    rpc: {cors: [https://c.example]}\n")
    assert load_spec(spec_dir.spec, "x").consortium.spec.network.rpc.cors == ("https://c.example",)


def test_null_removes_a_key(spec_dir: SpecDir) -> None:
    spec_dir.overlay("x", "spec:\n  organizations:\n    - name: org-a\n      baa: null\n")
    assert load_spec(spec_dir.spec).consortium.spec.organizations[0].baa is not None
    assert load_spec(spec_dir.spec, "x").consortium.spec.organizations[0].baa is None


def test_unknown_item_in_overlay_names_overlay_file_and_line(spec_dir: SpecDir) -> None:
    spec_dir.overlay("x", "spec:\n  organizations:\n    - name: org-z\n      role: payer\n")
    with pytest.raises(InvalidInput) as info:
        load_spec(spec_dir.spec, "x")
    (d,) = info.value.diagnostics
    assert d.location is not None and d.location.file.endswith("environments/x.yaml") and d.location.line == 3
    assert '"org-z" is not in the base spec' in d.message


def test_error_points_into_the_overlay_that_set_the_value(spec_dir: SpecDir) -> None:
    spec_dir.overlay("x", "# comment\nspec:\n  organizations:\n    - name: org-b\n      nodes:\n"
                          "        - {name: b-val-0, power: -3}\n")
    with pytest.raises(InvalidInput) as info:
        load_spec(spec_dir.spec, "x")
    (d,) = info.value.diagnostics
    assert d.path == "spec.organizations[1].nodes[0].power"
    assert d.location is not None and d.location.file.endswith("environments/x.yaml") and d.location.line == 6
    assert "expected a positive integer, got -3" in d.message


def test_unknown_environment_lists_known(spec_dir: SpecDir) -> None:
    spec_dir.overlay("dev", "spec: {}\n")
    with pytest.raises(InvalidInput) as info:
        load_spec(spec_dir.spec, "prod")
    assert "known environments: dev" in info.value.message


def test_overlay_yaml_error_points_into_overlay(spec_dir: SpecDir) -> None:
    spec_dir.overlay("x", "spec:\n  chain: {version: [\n")
    with pytest.raises(InvalidInput) as info:
        load_spec(spec_dir.spec, "x")
    (d,) = info.value.diagnostics
    assert d.location is not None and d.location.file.endswith("x.yaml")

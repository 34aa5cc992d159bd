from __future__ import annotations

from pathlib import Path

import pytest

from hcops.errors import InvalidInput
from hcops.spec.loader import load_spec
from tests.conftest import EXAMPLE, SpecDir


def errors_of(spec: Path, env: str | None = None) -> list[str]:
    with pytest.raises(InvalidInput) as info:
        load_spec(spec, env)
    return [d.format() for d in info.value.diagnostics] or [info.value.message]


def test_example_loads_as_written() -> None:
    loaded = load_spec(EXAMPLE)
    c = loaded.consortium
    assert c.name == "regional-health-net"
    assert [n.name for n in c.validators] == ["stmary-val-0", "northside-val-0", "bluecross-val-0", "cityrx-val-0"]
    assert c.node("state-obs-0").power == 0
    assert c.spec.data.tx_index == "off"  # YAML 1.2: "off" stays a string
    assert c.spec.chain.block_interval.total_seconds() == 1
    assert c.node("stmary-val-0").resources.memory == "512Mi"


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_example_environments_load(env: str) -> None:
    assert load_spec(EXAMPLE, env).environment == env


def test_missing_file(tmp_path: Path) -> None:
    (msg,) = errors_of(tmp_path / "absent.yaml")
    assert "absent.yaml:1:1: error: spec file not found" in msg


def test_empty_file(spec_dir: SpecDir) -> None:
    (msg,) = errors_of(spec_dir.write(""))
    assert "network.yaml:1:1: error: the spec file is empty" in msg


def test_non_mapping_document(spec_dir: SpecDir) -> None:
    (msg,) = errors_of(spec_dir.write("- a\n- b\n"))
    assert "expected a YAML mapping" in msg


def test_yaml_syntax_error_has_position(spec_dir: SpecDir) -> None:
    (msg,) = errors_of(spec_dir.write("apiVersion: hcops/v1alpha1\nkind: [Consortium\nmetadata: {}\n"))
    assert msg.startswith(str(spec_dir.spec.relative_to(Path.cwd())) if spec_dir.spec.is_relative_to(Path.cwd())
                          else str(spec_dir.spec))
    assert ":3:" in msg or ":4:" in msg
    assert "invalid YAML" in msg


def test_duplicate_yaml_keys_are_reported(spec_dir: SpecDir) -> None:
    (msg,) = errors_of(spec_dir.write("apiVersion: a\napiVersion: b\n"))
    assert "invalid YAML" in msg and ":2:" in msg


def test_all_errors_are_reported_not_only_the_first(spec_dir: SpecDir) -> None:
    text = spec_dir.spec.read_text().replace("power: 10}", 'power: "ten"}', 1)
    text = text.replace("chainId: small-1", "chainId: 'bad chain!'").replace("blockInterval: 1s", "blockInterval: soon")
    msgs = errors_of(spec_dir.write(text))
    assert len(msgs) == 3
    assert any(':16:' in m and 'spec.organizations[0].nodes[0].power: expected a positive integer, got "ten"' in m
               for m in msgs)
    assert any("spec.chain.chainId" in m for m in msgs)
    assert any("spec.chain.blockInterval" in m and "duration" in m for m in msgs)


def test_error_line_format(spec_dir: SpecDir) -> None:
    text = spec_dir.spec.read_text().replace("power: 10}", "power: ten}", 1)
    (msg,) = errors_of(spec_dir.write(text))
    assert msg.endswith('error: spec.organizations[0].nodes[0].power: expected a positive integer, got "ten"')
    file, line, col, _ = msg.split(":", 3)
    assert file.endswith("network.yaml") and line == "16" and int(col) > 1


def test_unknown_field_suggests(spec_dir: SpecDir) -> None:
    text = spec_dir.spec.read_text().replace("chainId:", "chainID:")
    msgs = errors_of(spec_dir.write(text))
    assert any('spec.chain.chainID: unknown field "chainID"; did you mean "chainId"?' in m for m in msgs)
    assert any("spec.chain.chainId: required field is missing" in m for m in msgs)


def test_missing_required_field_points_at_parent(spec_dir: SpecDir) -> None:
    text = spec_dir.spec.read_text().replace("    chainId: small-1\n", "")
    (msg,) = errors_of(spec_dir.write(text))
    assert "spec.chain.chainId: required field is missing" in msg
    assert ":7:" in msg  # the chain mapping's first value

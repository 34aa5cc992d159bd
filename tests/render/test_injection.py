"""Nothing from the spec can add structure to a rendered file: no extra YAML document or key, no TOML table,
no Ansible template. ``check_render_tree`` reads a whole render back and compares it with the plan; the CLI
and property tests of hostile specs use it too."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from hcops.plan.desired import NetworkPlan
from hcops.render import TARGETS, docker_compose, kubernetes_objects
from hcops.render.ansible import group_vars, host_vars, inventory
from hcops.render.base import Context, to_json
from hcops.render.kubernetes import namespace
from hcops.render.templating import AnsibleTemplate, ansible_yaml, comment, header
from tests.render.helpers import SPEC, fixture_plan, render_all

# Raw control characters (a TAB or newline is fine in a file, nothing else is).
_RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class Unsafe(str):
    """A string Ansible would read as ``!unsafe`` (never templated)."""


class AnsibleLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus Ansible's ``!unsafe`` tag."""


AnsibleLoader.add_constructor("!unsafe", lambda loader, node: Unsafe(loader.construct_scalar(node)))


def load_ansible(text: str) -> Any:
    return yaml.load(text, Loader=AnsibleLoader)  # noqa: S506 - a SafeLoader with one more scalar tag


def _docs(path: Path) -> list[Any]:
    return list(yaml.safe_load_all(path.read_text()))


def _check_ansible_strings(value: Any, where: str) -> None:
    """Every string is tagged !unsafe, except hcops' own templates ({{ inventory_dir }}/files/...)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_ansible_strings(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_ansible_strings(v, f"{where}[{i}]")
    elif isinstance(value, str) and not isinstance(value, Unsafe):
        assert value.startswith("{{ inventory_dir }}/files/"), f"{where}: {value!r} is not tagged !unsafe"


def check_render_tree(out: Path, plan: NetworkPlan, targets: tuple[str, ...] = TARGETS) -> None:
    """Every file of the render under ``out`` parses back to exactly what the plan says, no more."""
    seen: set[str] = set()
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        seen.add(rel)
        if path.name == ".hcops-files" or "/keys/" in rel:
            continue
        text = path.read_text()
        assert not _RAW_CONTROL.search(text), f"{rel}: raw control or bidi character"
        if path.suffix == ".yaml":
            lines = text.splitlines()
            assert lines[0].startswith("# ") and all(not line or line.startswith("#") for line in lines[:3]), rel
    ctx = Context(plan)
    if "docker" in targets:
        _check_docker(out / "docker", plan)
    if "kubernetes" in targets:
        _check_kubernetes(out / "kubernetes", plan)
    if "ansible" in targets:
        _check_ansible(out / "ansible", plan, ctx)
    for target, rel in (("docker", "genesis.json"), ("ansible", "files/genesis.json")):
        if target in targets:
            assert json.loads((out / target / rel).read_text()) == json.loads(plan.genesis_json())
    assert all(rel.split("/")[0] in targets for rel in seen), seen


def _check_docker(root: Path, plan: NetworkPlan) -> None:
    (compose,) = _docs(root / "compose.yaml")
    assert compose == docker_compose(plan)
    assert set(compose) == {"services", "networks", "volumes"}
    assert (root / ".env").read_text() == f"COMPOSE_PROJECT_NAME={plan.name}\n"
    for node in plan.nodes:
        assert tomllib.loads((root / "nodes" / node.name / "config.toml").read_text()) == plan.docker_config(node)


def _check_kubernetes(root: Path, plan: NetworkPlan) -> None:
    expected = kubernetes_objects(plan, secrets=True)
    counts = {"00-namespace.yaml": 1, "20-disruption-budget.yaml": 1, "30-genesis.yaml": 1,
              "10-network-policies.yaml": sum(o["kind"] == "NetworkPolicy" for o in expected)}
    counts |= {f"50-node-{n.name}.yaml": 3 for n in plan.nodes}
    counts |= {f"secrets/{n.name}.yaml": 1 for n in plan.nodes}
    rendered: list[Any] = []
    for rel, count in counts.items():
        docs = _docs(root / rel)
        assert len(docs) == count, f"{rel}: {len(docs)} YAML documents, expected {count}"
        rendered += docs
    assert sorted(rendered, key=json.dumps) == sorted(expected, key=json.dumps)
    assert {p.relative_to(root).as_posix() for p in root.rglob("*.yaml")} == set(counts)
    for obj in rendered:
        if obj["kind"] == "ConfigMap" and "config.toml" in obj["data"]:
            node = plan.node(obj["metadata"]["labels"]["hcops.node"])
            assert tomllib.loads(obj["data"]["config.toml"]) == plan.kubernetes_config(node, namespace(plan))
        if obj["kind"] == "ConfigMap" and "genesis.json" in obj["data"]:
            assert json.loads(obj["data"]["genesis.json"]) == json.loads(plan.genesis_json())


def _check_ansible(root: Path, plan: NetworkPlan, ctx: Context) -> None:
    docs = {"inventory.yaml": inventory(plan), "group_vars/all.yaml": group_vars(ctx)}
    for node in plan.nodes:
        config = plan.host_config(node)
        docs[f"host_vars/{node.name}.yaml"] = host_vars(plan, node, config)
        assert tomllib.loads((root / "files" / node.name / "config.toml").read_text()) == config
    for rel, expected in docs.items():
        text = (root / rel).read_text()
        assert len(list(yaml.compose_all(text))) == 1, f"{rel}: more than one YAML document"
        parsed = load_ansible(text)
        assert parsed == expected, rel
        _check_ansible_strings(parsed, rel)


# ------------------------------------------------------------------------------------------------ tests

HOSTILE_NAMES = ["evil\n---\nkind: Pod.yaml", "a\r\nb: c.yaml", "x\u2028y\u0085z.yaml", "bidi\u202egpj.yaml",
                 'q"uo\\te#.yaml', "\x1b[31mred.yaml", "ümlaut.yaml"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_spec_file_name_cannot_add_yaml(tmp_path: Path, name: str) -> None:
    spec = tmp_path / name
    spec.write_text(SPEC.read_text())
    plan = fixture_plan(tmp_path / "state", spec)
    render_all(plan, tmp_path / "out")
    check_render_tree(tmp_path / "out", plan)
    for path in (tmp_path / "out").rglob("*.yaml"):
        assert f"# Rendered by hcops from {to_json(name)}, network golden-net," in path.read_text(), path


def test_a_plain_file_name_is_shown_as_it_is(tmp_path: Path) -> None:
    plan = fixture_plan(tmp_path / "state")
    assert "# Rendered by hcops from network.yaml, network golden-net," in header(Context(plan), "x")


def test_header_lines_stay_comments(tmp_path: Path) -> None:
    plan = fixture_plan(tmp_path / "state")
    text = header(Context(plan), "a\nb: 1\r\n---\u2028c\x85d")
    assert text.count("\n") == 2 and all(line.startswith("# ") for line in text.split("\n"))
    assert yaml.safe_load(text + "\nkey: 1\n") == {"key": 1}


@pytest.mark.parametrize("text", ["\n", "\r", "\x85", "\u2028", "\u2029", "\x1b", "\x7f", "\u202e", "\U0001f600"])
def test_comment_keeps_one_printable_line(text: str) -> None:
    out = comment(f"a{text}b")
    assert re.fullmatch(r"[\x20-\x7e]+", out) and out.startswith("a\\") and out.endswith("b")


def test_ansible_values_are_unsafe_except_hcops_templates() -> None:
    doc = {"x": "{{ lookup('pipe', 'id') }}", "y": AnsibleTemplate("{{ inventory_dir }}/files/a"), "n": 3,
           "z": {"inner": "{% if true %}x{% endif %}", "list": ["{{ a }}", 1]}, "e": {}, "l": []}
    text = "doc:" + ansible_yaml(doc, 2) + "\n"
    parsed = load_ansible(text)["doc"]
    assert parsed == doc
    assert isinstance(parsed["x"], Unsafe) and isinstance(parsed["z"]["inner"], Unsafe)
    assert isinstance(parsed["z"]["list"][0], Unsafe)
    assert not isinstance(parsed["y"], Unsafe)
    assert 'x: !unsafe "{{ lookup(\'pipe\', \'id\') }}"' in text


def test_rendered_ansible_variables_are_all_unsafe(tmp_path: Path) -> None:
    plan = fixture_plan(tmp_path / "state")
    render_all(plan, tmp_path / "out")
    check_render_tree(tmp_path / "out", plan)
    group = load_ansible((tmp_path / "out" / "ansible" / "group_vars" / "all.yaml").read_text())
    assert isinstance(group["cometbft_chain_id"], Unsafe) and isinstance(group["cometbft_home"], Unsafe)
    assert not isinstance(group["cometbft_genesis_src"], Unsafe)
    hosts = load_ansible((tmp_path / "out" / "ansible" / "inventory.yaml").read_text())
    assert isinstance(hosts["all"]["children"]["org_city_lab"]["hosts"]["lab-obs-0"]["ansible_host"], Unsafe)


def test_user_text_in_toml_stays_one_value(tmp_path: Path) -> None:
    """CORS origins are the one list of user text in config.toml: quoted and escaped by the TOML writer."""
    spec = tmp_path / "network.yaml"
    origins = '["https://portal.example", "https://a-b.example:8443", "http://[::1]:3000"]'
    spec.write_text(SPEC.read_text().replace('cors: ["https://portal.example"]', f"cors: {origins}"))
    plan = fixture_plan(tmp_path / "state", spec)
    render_all(plan, tmp_path / "out")
    check_render_tree(tmp_path / "out", plan)
    node = plan.nodes[0]
    config = tomllib.loads((tmp_path / "out" / "docker" / "nodes" / node.name / "config.toml").read_text())
    assert config["rpc"]["cors_allowed_origins"] == json.loads(origins)

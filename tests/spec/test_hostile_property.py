"""Property: a hostile string in any free-text field of a valid spec (or in the overlay's file name) is either
refused as invalid input, pointing into the spec, or rendered so that every file parses back to exactly the
documents and keys the plan holds. Never any other exception, never a raw control character in a message."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from hcops.errors import InvalidInput
from hcops.plan.desired import build_plan
from hcops.render import TARGETS
from hcops.spec.diagnostics import UNSAFE_CHARS
from hcops.spec.loader import load_spec
from hcops.usecases.render import render
from tests.render.test_injection import check_render_tree

BASE: dict[str, Any] = {
    "apiVersion": "hcops/v1alpha1", "kind": "Consortium",
    "metadata": {"name": "hostile-net", "labels": {"team": "ops"}},
    "spec": {
        "chain": {"version": "0.38.17", "image": "cometbft/cometbft:v0.38.17", "chainId": "hostile-1"},
        "organizations": [
            {"name": "org-a", "role": "provider", "contact": {"breakGlass": "oncall@a.example"},
             "nodes": [{"name": "a-val-0", "role": "validator", "power": 10}]},
            {"name": "org-b", "role": "payer", "nodes": [{"name": "b-val-0", "role": "validator", "power": 10}]},
            {"name": "org-c", "role": "pharmacy", "nodes": [{"name": "c-val-0", "role": "validator", "power": 10}]},
            {"name": "org-d", "role": "laboratory", "nodes": [{"name": "d-val-0", "role": "validator", "power": 10},
                                                              {"name": "d-obs-0", "role": "observer"}]},
        ],
        "network": {"rpc": {"cors": ["https://portal.example"]}},
        "backup": {"enabled": True, "schedule": "0 2 * * *"},
        "provider": {"docker": {"subnet": "10.77.0.0/24", "restart": "unless-stopped"},
                     "kubernetes": {"namespace": "hostile", "storageClass": "fast-ssd", "context": "ctx"},
                     "ansible": {"user": "cometbft", "home": "/srv/cometbft"}},
    },
}

# Every free-text field, as the path of its value in BASE.
FIELDS: list[tuple[str | int, ...]] = [
    ("metadata", "name"), ("metadata", "labels", "team"),
    ("spec", "chain", "chainId"), ("spec", "chain", "image"), ("spec", "chain", "version"),
    ("spec", "organizations", 0, "name"), ("spec", "organizations", 1, "nodes", 0, "name"),
    ("spec", "organizations", 0, "contact", "breakGlass"), ("spec", "network", "rpc", "cors", 0),
    ("spec", "backup", "schedule"), ("spec", "provider", "docker", "subnet"),
    ("spec", "provider", "docker", "restart"), ("spec", "provider", "kubernetes", "namespace"),
    ("spec", "provider", "kubernetes", "storageClass"), ("spec", "provider", "kubernetes", "context"),
    ("spec", "provider", "ansible", "user"), ("spec", "provider", "ansible", "home"),
]
LABEL_KEY = "label-key"  # the hostile string as a key of metadata.labels
OVERLAY_NAME = "overlay-name"  # the hostile string as the name of environments/NAME.yaml (and --env NAME)
SPEC_NAME = "spec-name"  # the hostile string as the spec's own file name

FRAGMENTS = st.sampled_from([
    "\n", "\r\n", "\r", "\x85", "\u2028", "\u2029", "\n---\nkind: Pod\n", "---", "...", "\x1b[31m", "\x1b]0;x\x07",
    "\x9b2J", "\x7f", "\x00", "\t", "\u202e", "\u2066", "\u200b", "\ufeff", "{{ lookup('pipe', 'id') }}",
    "{% if true %}x{% endif %}", "{#", "'", '"', "\\", "#", ": ", "- ", "&a", "*a", "!!python/object", "!unsafe ",
    "*", "h*", "*.example.com", "https://", "[", "]", "{", "}", ",", "%", "@", "`", "|", ">", "${HOME}", "$(id)",
    "..", "/", "./prod", "x" * 5000, "ü", "\U0001f600", "prod", "dev",
])
VALID_HEADS = st.sampled_from(["", "net", "a-val-0", "hostile-1", "https://portal.example", "0 2 * * *",
                               "10.77.0.0/24", "cometbft/cometbft:v0.38.17", "/srv/cometbft", "ok"])
# Printable ones pass the free-text checks (a contact, a label), so they reach the rendered files.
PRINTABLE = st.sampled_from(["---", "...", "{{ x }}", "{% x %}", "'", '"', "\\", "#", " # c", ": ", "- ", "&a",
                             "*a", "!unsafe ", "!!str", "[", "}", "%", "@", "`", "|", ">", "${X}", "ü", "\U0001f600"])
HOSTILE = st.builds(lambda head, parts: head + "".join(parts), VALID_HEADS,
                    st.lists(st.one_of(FRAGMENTS, PRINTABLE, st.text(max_size=8)), min_size=1, max_size=4))


def _set(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    here: Any = doc
    for part in path[:-1]:
        here = here[part]
    here[path[-1]] = value


def _attempt(root: Path, doc: dict[str, Any], spec_name: str, env: str | None) -> str:
    spec = root / spec_name
    spec.write_text(json.dumps(doc))  # JSON is YAML; every character is written as an escape
    out = root / "out"
    try:
        result = render(spec, env, out, TARGETS, root / "state", generate_keys=True)
    except InvalidInput as exc:
        texts = [exc.message, *(d.format() for d in exc.diagnostics)]
        assert not any(UNSAFE_CHARS.search(t) for t in texts), texts
        if env is None:  # the value came from the spec: the problem points into it
            assert exc.diagnostics and all(d.location is not None for d in exc.diagnostics), texts
        return "refused"
    check_render_tree(out, result.plan)
    # The render is the plan of the spec as loaded again: nothing of it depends on the render itself.
    assert build_plan(load_spec(spec, env), root / "state").spec_hash() == result.plan.spec_hash()
    return "rendered"


TARGET = st.sampled_from([*FIELDS, LABEL_KEY, OVERLAY_NAME, SPEC_NAME])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(target=TARGET, value=HOSTILE)
def test_hostile_values_are_refused_or_rendered_harmlessly(target: Any, value: str) -> None:
    doc = copy.deepcopy(BASE)
    spec_name, env = "network.yaml", None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if target == LABEL_KEY:
            doc["metadata"]["labels"] = {value: "x"}
        elif target in (OVERLAY_NAME, SPEC_NAME):
            assume("/" not in value and "\x00" not in value and value not in ("", ".", ".."))
            assume(len(f"{value}.yaml".encode()) <= 255)
            name = value if target == OVERLAY_NAME else f"{value}.yaml"
            path = root / "environments" / f"{value}.yaml" if target == OVERLAY_NAME else root / name
            path.parent.mkdir(exist_ok=True)
            if target == OVERLAY_NAME:
                path.write_text("spec: {}\n")
                env = value
            else:
                spec_name = name
        else:
            _set(doc, target, value)
        event(_attempt(root, doc, spec_name, env))


def test_every_field_path_names_a_string() -> None:
    for path in FIELDS:
        here: Any = BASE
        for part in path:
            here = here[part]
        assert isinstance(here, str), path


def test_the_base_spec_renders(tmp_path: Path) -> None:
    _attempt(tmp_path, copy.deepcopy(BASE), "network.yaml", None)
    assert (tmp_path / "out" / "docker" / "compose.yaml").is_file()

"""The spec's boundary against hostile values: whole-value patterns, environment names, the tier, CORS origins,
the docker subnet, printable free text and messages that never echo a control character."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hcops.errors import Diagnostic, InvalidInput
from hcops.plan.desired import build_plan, node_ip
from hcops.spec import types
from hcops.spec.diagnostics import UNSAFE_CHARS, escape_text, quote
from hcops.spec.loader import load_spec
from hcops.spec.models import Consortium, Tier, effective_tier
from hcops.spec.overlay import ENV_NAME, available_environments
from hcops.spec.providers.docker import addresses_needed
from tests.conftest import EXAMPLE, SMALL_SPEC, SpecDir


def diagnostics(spec: Path, env: str | None = None) -> list[Diagnostic]:
    with pytest.raises(InvalidInput) as info:
        load_spec(spec, env)
    return info.value.diagnostics


def error_at(spec_dir: SpecDir, text: str, path: str) -> Diagnostic:
    found = [d for d in diagnostics(spec_dir.write(text)) if d.path == path]
    assert found, f"no error at {path}"
    assert found[0].location is not None and found[0].location.file.endswith("network.yaml")
    return found[0]


def with_spec_line(line: str) -> str:
    """SMALL_SPEC with one more line under spec: (before organizations)."""
    return SMALL_SPEC.replace("  organizations:", f"{line}\n  organizations:")


# ------------------------------------------------------------------------------- 1. whole-value patterns

@pytest.mark.parametrize("pattern", [types.DNS1123_LABEL, types.DNS1123_SUBDOMAIN, types.CHAIN_ID, types.IMAGE_REF])
def test_no_pattern_accepts_a_trailing_newline_even_with_match(pattern: object) -> None:
    import re

    assert isinstance(pattern, re.Pattern)
    value = {types.IMAGE_REF: "cometbft/cometbft:v1"}.get(pattern, "net")
    assert pattern.match(value) and pattern.fullmatch(value)
    assert not pattern.match(value + "\n") and not pattern.fullmatch(value + "\n")


@pytest.mark.parametrize(("old", "new", "path"), [
    ("name: small-net", 'name: "small-net\\n"', "metadata.name"),
    ("name: org-b", 'name: "org-b\\n"', "spec.organizations[1].name"),
    ("{name: a-val-0,", '{name: "a-val-0\\n",', "spec.organizations[0].nodes[0].name"),
    ("chainId: small-1", 'chainId: "small-1\\n"', "spec.chain.chainId"),
    ("image: cometbft/cometbft:v0.38.17", 'image: "cometbft/cometbft:v0.38.17\\n"', "spec.chain.image"),
    ('version: "0.38.17"', 'version: "0.38.17\\n"', "spec.chain.version"),
    ('version: "0.38.17"', 'version: "٠.٣٨.١٧"', "spec.chain.version"),  # Unicode digits are not digits here
    ("image: cometbft/cometbft:v0.38.17", "image: cometbft/cometbft:vé", "spec.chain.image"),
])
def test_trailing_newlines_and_unicode_lookalikes_are_rejected(spec_dir: SpecDir, old: str, new: str,
                                                               path: str) -> None:
    assert old in SMALL_SPEC
    d = error_at(spec_dir, SMALL_SPEC.replace(old, new, 1), path)
    assert "\n" not in d.format()


@pytest.mark.parametrize(("line", "path"), [
    ('  provider: {kubernetes: {namespace: "ns\\n"}}', "spec.provider.kubernetes.namespace"),
    ('  provider: {kubernetes: {storageClass: "fast\\n"}}', "spec.provider.kubernetes.storageClass"),
    ('  provider: {kubernetes: {storageClass: "Fast SSD"}}', "spec.provider.kubernetes.storageClass"),
    ('  provider: {kubernetes: {context: "ctx\\e[2J"}}', "spec.provider.kubernetes.context"),
    ('  provider: {docker: {restart: "always\\n"}}', "spec.provider.docker.restart"),
    ('  provider: {ansible: {user: "root\\n"}}', "spec.provider.ansible.user"),
    ('  provider: {ansible: {user: "{{ x }}"}}', "spec.provider.ansible.user"),
    ('  provider: {ansible: {home: "/srv/{{ lookup(\'pipe\', \'id\') }}"}}', "spec.provider.ansible.home"),
    ('  provider: {ansible: {home: "/srv/../etc"}}', "spec.provider.ansible.home"),
    ('  backup: {schedule: "0 2 * * *\\n"}', "spec.backup.schedule"),
    ('  backup: {schedule: "0 2 * *\\n*"}', "spec.backup.schedule"),
    ('  backup: {schedule: "@daily\\n"}', "spec.backup.schedule"),
])
def test_settings_are_whole_values(spec_dir: SpecDir, line: str, path: str) -> None:
    error_at(spec_dir, with_spec_line(line), path)


@pytest.mark.parametrize("line", [
    "  backup: {schedule: '0 2 * * *'}", "  backup: {schedule: '@daily'}", "  backup: {schedule: '*/5 1-3 * JAN MON-FRI'}",
    "  provider: {docker: {restart: on-failure:3}}", "  provider: {ansible: {user: cometbft, home: /var/lib/cmt/}}",
    "  provider: {kubernetes: {storageClass: fast.ssd-1, context: 'arn:aws:eks:us-east-1:1:cluster/x'}}",
])
def test_ordinary_settings_still_pass(spec_dir: SpecDir, line: str) -> None:
    load_spec(spec_dir.write(with_spec_line(line)))


# ------------------------------------------------------------------------------- 3. environment names

@pytest.mark.parametrize("env", ["./prod", "../../x", "/abs/x", "prod/", "prod\n", "", " prod", "-x", "a" * 64,
                                 "pr od", "prod.yaml", "\u202eprod"])
def test_environment_names_that_are_not_plain_names_are_refused(spec_dir: SpecDir, env: str) -> None:
    spec_dir.overlay("prod", "spec: {}\n")
    spec_dir.overlay("dev", "spec: {}\n")
    with pytest.raises(InvalidInput) as info:
        load_spec(spec_dir.spec, env)
    message = info.value.message
    assert "invalid environment name" in message and "known environments: dev, prod" in message
    assert not UNSAFE_CHARS.search(message)


@pytest.mark.parametrize("env", ["prod", "Prod-EU", "qa_2", "x", "a" * 63])
def test_plain_names_are_environments(env: str) -> None:
    assert ENV_NAME.fullmatch(env)


def test_an_overlay_linked_from_outside_is_refused(spec_dir: SpecDir, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.yaml"
    outside.write_text("spec: {}\n")
    try:
        (spec_dir.root / "environments").mkdir()
        (spec_dir.root / "environments" / "prod.yaml").symlink_to(outside)
        with pytest.raises(InvalidInput) as info:
            load_spec(spec_dir.spec, "prod")
        assert "symbolic link to a file outside" in info.value.message
        assert available_environments(spec_dir.spec) == []
    finally:
        outside.unlink()


def test_an_overlay_linked_within_the_folder_is_fine(spec_dir: SpecDir) -> None:
    spec_dir.overlay("production", "spec: {tier: production}\n")
    (spec_dir.root / "environments" / "prod.yaml").symlink_to("production.yaml")
    assert load_spec(spec_dir.spec, "prod").tier is Tier.production
    assert available_environments(spec_dir.spec) == ["prod", "production"]


def test_odd_overlay_file_names_are_not_listed(spec_dir: SpecDir) -> None:
    spec_dir.overlay("dev", "spec: {}\n")
    spec_dir.overlay("x\x1b[2J", "spec: {}\n")
    spec_dir.overlay(".hidden", "spec: {}\n")
    assert available_environments(spec_dir.spec) == ["dev"]


# ------------------------------------------------------------------------------- 4. the tier

@pytest.mark.parametrize(("declared", "env", "tier"), [
    (None, None, None), (None, "prod", Tier.production), (None, "production", Tier.production),
    (None, "PROD", Tier.production), (None, "dev", Tier.development), (None, "development", Tier.development),
    (None, "staging", Tier.staging), (None, "stage", Tier.staging), (None, "qa", None), (None, "prod-eu", None),
    (Tier.staging, "prod", Tier.staging), (Tier.production, None, Tier.production),
    (Tier.production, "dev", Tier.production),
])
def test_effective_tier(declared: Tier | None, env: str | None, tier: Tier | None) -> None:
    assert effective_tier(declared, env) is tier


def test_the_tier_may_come_from_an_overlay(spec_dir: SpecDir) -> None:
    spec_dir.overlay("eu", "spec: {tier: production}\n")
    loaded = load_spec(spec_dir.spec, "eu")
    assert loaded.tier is Tier.production and loaded.consortium.spec.tier is Tier.production
    assert load_spec(spec_dir.spec).tier is None


@pytest.mark.parametrize(("env", "tier"), [("dev", Tier.development), ("staging", Tier.staging),
                                           ("prod", Tier.production)])
def test_the_example_overlays_set_their_tier(env: str, tier: Tier) -> None:
    assert load_spec(EXAMPLE, env).consortium.spec.tier is tier


def test_an_unset_tier_leaves_the_dump_and_spec_hash_unchanged(spec_dir: SpecDir) -> None:
    c = load_spec(spec_dir.spec).consortium
    assert "tier" not in c.model_dump(mode="json", by_alias=True)["spec"]
    explicit = Consortium.model_validate({**c.model_dump(by_alias=True),
                                          "spec": {**c.spec.model_dump(by_alias=True), "tier": "staging"}})
    assert explicit.model_dump(mode="json", by_alias=True)["spec"]["tier"] == "staging"
    assert json.loads(json.dumps(Consortium.model_json_schema(by_alias=True)))["$defs"]["ConsortiumSpec"][
        "properties"]["tier"]


def test_the_policy_input_carries_the_tier(tmp_path: Path) -> None:
    from hcops.policy.input import build_input
    from tests.render.helpers import fixture_plan

    doc = build_input(fixture_plan(tmp_path / "a", EXAMPLE, "prod"))
    assert (doc["environment"], doc["tier"]) == ("prod", "production")
    assert build_input(fixture_plan(tmp_path / "b", EXAMPLE))["tier"] is None


# ------------------------------------------------------------------------------- 6. CORS origins

@pytest.mark.parametrize("origin", ["*", "https://portal.example", "http://localhost:3000", "https://10.0.0.1:8443",
                                    "http://[::1]:8080", "app+ios://portal.example", "HTTPS://Portal.Example"])
def test_exact_origins_pass(spec_dir: SpecDir, origin: str) -> None:
    load_spec(spec_dir.write(with_spec_line(f"  network: {{rpc: {{cors: [{json.dumps(origin)}]}}}}")))


@pytest.mark.parametrize("origin", ["h*", "*.example.com", "https://*.example.com", "https://portal.*", "**",
                                    "portal.example", "https://portal.example/", "https://portal.example/app",
                                    "https://portal.example?x=1", "https://u@portal.example", "https://",
                                    "https://portal.example:0", "https://portal.example:65536", "null",
                                    "https://portal..example", "https://-portal.example", "http://[::1",
                                    "http://[zz::1]", "https://portal.example\n", " https://portal.example"])
def test_wildcards_and_non_origins_fail(spec_dir: SpecDir, origin: str) -> None:
    text = with_spec_line(f"  network: {{rpc: {{cors: [https://ok.example, {json.dumps(origin)}]}}}}")
    d = error_at(spec_dir, text, "spec.network.rpc.cors[1]")
    assert ("wildcard" in d.message) == ("*" in origin)


# ------------------------------------------------------------------------------- 7. docker subnet

@pytest.mark.parametrize(("subnet", "fragment"), [
    ("banana", "IPv4 network in CIDR form"), ("10.0.0.0/33", "IPv4 network in CIDR form"),
    ("10.0.0.5/24", 'no host bits set, "10.0.0.0/24"'), ("fd00::/64", "expected an IPv4 network"),
    ("10.0.0.0/29", "room for at least one node"), ("127.0.0.0/8", "unicast"), ("224.0.0.0/24", "unicast"),
    ("0.0.0.0/0", "unicast"),
])
def test_bad_subnets_are_positioned_errors(spec_dir: SpecDir, subnet: str, fragment: str) -> None:
    d = error_at(spec_dir, with_spec_line(f"  provider: {{docker: {{subnet: {json.dumps(subnet)}}}}}"),
                 "spec.provider.docker.subnet")
    assert fragment in d.message


def test_a_subnet_must_hold_every_node(spec_dir: SpecDir, tmp_path: Path) -> None:
    nodes = len(load_spec(spec_dir.spec).consortium.nodes)  # 5
    assert addresses_needed(nodes) == 16
    loaded = load_spec(spec_dir.write(with_spec_line("  provider: {docker: {subnet: 10.9.0.0/28}}")))
    plan = build_plan(loaded, tmp_path / "state")  # the largest node address fits: no crash in node_ip
    assert plan.nodes[-1].docker_ip == "10.9.0.14"
    more = "        - {name: d-obs-1, role: observer}\n"
    d = error_at(spec_dir, with_spec_line("  provider: {docker: {subnet: 10.9.0.0/28}}") + more,
                 "spec.provider.docker.subnet")
    assert "6 nodes need 17 addresses" in d.message and "has 16" in d.message
    with pytest.raises(ValueError):
        node_ip("10.9.0.0/28", 5)  # what render would have hit


# ------------------------------------------------------------------------------- 8. printable messages

@pytest.mark.parametrize("value", ["\x1b[31m", "\x9b31m", "a\u202eb", "\u2066x\u2069", "\x7f", "\x00", "z\u200bw"])
def test_quoted_values_are_escaped(value: str) -> None:
    shown = quote(value)
    assert not UNSAFE_CHARS.search(shown) and shown.startswith('"') and shown.endswith('"')
    assert escape_text(shown) == shown  # escaping twice changes nothing


def test_escape_shows_the_sequence_readably() -> None:
    assert quote("\x1b[31m") == '"\\x1b[31m"' and quote("a\nb\tc") == '"a\\nb\\tc"'
    assert quote("\u202e") == '"\\u202e"' and escape_text("C:\\path") == "C:\\path"
    long = quote("x" * 10_000)
    assert len(long) < 200 and "10000 characters" in long


@pytest.mark.parametrize(("line", "path"), [
    ('  network: {rpc: {cors: ["\\e[31mhttps://x.example"]}}', "spec.network.rpc.cors[0]"),
    ('  defaults: {resources: {cpu: "\\e[2J"}}', "spec.defaults.resources.cpu"),
    ('  network: {rpc: {exposure: "\\e[2Jpublic"}}', "spec.network.rpc.exposure"),
    ('  "\\e[2Jbogus": 1', "spec.\\x1b[2Jbogus"),
    ('  data: {phiOnChain: "\\u202enone"}', "spec.data.phiOnChain"),
])
def test_no_diagnostic_echoes_a_control_character(spec_dir: SpecDir, line: str, path: str) -> None:
    found = diagnostics(spec_dir.write(with_spec_line(line)))
    assert any(d.path == path for d in found), [d.format() for d in found]
    for d in found:
        assert not UNSAFE_CHARS.search(d.format()), d.format()


@pytest.mark.parametrize("contact", ["call \x1b[2J", "on\u202ecall", "a\nb", "x" * 300, "ab"])
def test_break_glass_is_printable_text(spec_dir: SpecDir, contact: str) -> None:
    text = SMALL_SPEC.replace("      baa: {signed: true, signedOn: 2026-01-01}\n",
                              f"      contact: {{breakGlass: {json.dumps(contact)}}}\n")
    error_at(spec_dir, text, "spec.organizations[0].contact.breakGlass")


def test_free_text_may_hold_yaml_and_template_characters(spec_dir: SpecDir) -> None:
    contact = "on-call #1 --- {{ pager }} {% x %} 'quoted' \"twice\" ümlaut"
    text = SMALL_SPEC.replace("      baa: {signed: true, signedOn: 2026-01-01}\n",
                              f"      contact: {{breakGlass: {json.dumps(contact)}}}\n")
    org = load_spec(spec_dir.write(text)).consortium.spec.organizations[0]
    assert org.contact is not None and org.contact.break_glass == contact


def test_a_file_name_with_escapes_is_shown_escaped(tmp_path: Path) -> None:
    spec = tmp_path / "net\x1b[2J.yaml"
    spec.write_text(SMALL_SPEC.replace("chainId: small-1", "chainId: bad chain"))
    with pytest.raises(InvalidInput) as info:
        load_spec(spec)
    assert not UNSAFE_CHARS.search(info.value.message)
    (d,) = info.value.diagnostics
    assert d.location is not None and d.location.file.endswith("net\\x1b[2J.yaml")
    assert os.path.exists(spec)  # the file itself is untouched, only its name in messages is escaped


def test_labels_are_printable_text(spec_dir: SpecDir) -> None:
    text = SMALL_SPEC.replace("  name: small-net\n", '  name: small-net\n  labels: {team: "a\\e[2J"}\n')
    error_at(spec_dir, text, "metadata.labels.team")

"""One failing and one passing case for every validation rule."""

from __future__ import annotations

import pytest

from hcops.errors import InvalidInput
from hcops.spec.loader import load_spec
from tests.conftest import SMALL_SPEC, SpecDir


def messages(spec_dir: SpecDir, text: str, env: str | None = None) -> list[str]:
    spec_dir.write(text)
    if env:
        spec_dir.overlay(env, "spec: {}\n")
    try:
        loaded = load_spec(spec_dir.spec, env)
    except InvalidInput as exc:
        return [d.format() for d in exc.diagnostics]
    return [d.format() for d in loaded.warnings]


def ok(spec_dir: SpecDir, text: str, env: str | None = None) -> None:
    spec_dir.write(text)
    if env:
        spec_dir.overlay(env, "spec: {}\n")
    load_spec(spec_dir.spec, env)


CASES = [
    # (rule, bad edit, expected fragment)
    ("api version", ("apiVersion: hcops/v1alpha1", "apiVersion: hcops/v2"), "apiVersion: expected one of"),
    ("kind", ("kind: Consortium", "kind: Network"), "kind: expected one of 'Consortium'"),
    ("dns name of network", ("name: small-net", "name: Small_Net"), "metadata.name: expected a DNS-1123 label"),
    ("dns name of org", ("name: org-b", "name: Org B"), "spec.organizations[1].name: expected a DNS-1123 label"),
    ("dns name of node", ("name: a-val-0", "name: a.val.0"), "spec.organizations[0].nodes[0].name: expected a DNS"),
    ("unique org names", ("name: org-b", "name: org-a"), 'duplicate organization name "org-a"'),
    ("unique node names", ("name: b-val-0", "name: a-val-0"), 'duplicate node name "a-val-0"'),
    ("positive power", ("{name: c-val-0, role: validator, power: 10}", "{name: c-val-0, role: validator, power: 0}"),
     "spec.organizations[2].nodes[0].power: expected a positive integer, got 0"),
    ("integer power", ("{name: c-val-0, role: validator, power: 10}", "{name: c-val-0, role: validator, power: 2.5}"),
     "expected a positive integer, got 2.5"),
    ("validator needs power", ("{name: c-val-0, role: validator, power: 10}", "{name: c-val-0, role: validator}"),
     "spec.organizations[2].nodes[0]: expected a positive integer power for a validator"),
    ("observer has no power", ("{name: d-obs-0, role: observer}", "{name: d-obs-0, role: observer, power: 1}"),
     "an observer has no voting power"),
    ("node role", ("{name: d-obs-0, role: observer}", "{name: d-obs-0, role: watcher}"), "expected one of 'validator'"),
    ("org role", ("role: payer", "role: insurer"), "spec.organizations[1].role: expected one of"),
    ("duration", ("blockInterval: 1s", "blockInterval: 1 second"), "spec.chain.blockInterval: expected a duration"),
    ("positive duration", ("blockInterval: 1s", "blockInterval: 0s"), "expected a positive duration"),
    ("chain id", ("chainId: small-1", "chainId: small chain"), "spec.chain.chainId: expected a chain id"),
    ("image reference", ("image: cometbft/cometbft:v0.38.17", "image: 'Not An Image!'"),
     "spec.chain.image: expected an image reference"),
    ("version", ('version: "0.38.17"', "version: latest"),
     'spec.chain.version: expected a version such as "0.38.17", got "latest"'),
    ("tier", ("  organizations:", "  tier: prod\n  organizations:"), "spec.tier: expected one of 'development'"),
    ("cors origin", ("  organizations:", "  network: {rpc: {cors: [portal.example]}}\n  organizations:"),
     "spec.network.rpc.cors[0]: expected an origin scheme://host[:port]"),
    ("backup schedule", ("  organizations:", "  backup: {schedule: nightly}\n  organizations:"),
     "spec.backup.schedule: expected a cron schedule"),
    ("docker subnet", ("  organizations:", "  provider: {docker: {subnet: 10.1.2.3/24}}\n  organizations:"),
     'spec.provider.docker.subnet: expected a network address with no host bits set, "10.1.2.0/24"'),
    ("cpu quantity", ("  organizations:", '  defaults: {resources: {cpu: "lots"}}\n  organizations:'),
     'spec.defaults.resources.cpu: expected a positive cpu quantity such as "500m" or "2", got "lots"'),
    ("memory quantity", ("  organizations:", "  defaults: {storage: {size: 10 GB}}\n  organizations:"),
     "spec.defaults.storage.size: expected a positive memory quantity"),
    ("at least one validator", ("role: validator, power: 10}", "role: observer}"), "expected at least one validator"),
    ("enough validators", ("        - {name: d-val-0, role: validator, power: 10}\n", ""),
     "3 validator(s) cannot tolerate a faulty one"),
    ("no org above 2/3", ("{name: a-val-0, role: validator, power: 10}", "{name: a-val-0, role: validator, power: 70}"),
     'organization "org-a" holds 70% of voting power (> 2/3)'),
    ("exposure", ("  organizations:", "  network: {rpc: {exposure: everywhere}}\n  organizations:"),
     "spec.network.rpc.exposure: expected one of"),
    ("kubernetes statefulset name", ("name: d-obs-0", "name: d-obs-" + "x" * 47), 'node name "d-obs-xxx'),
    ("port range", ("  organizations:", "  provider: {docker: {rpcHostPortBase: 65534}}\n  organizations:"),
     "spec.provider.docker.rpcHostPortBase"),
]


@pytest.mark.parametrize(("rule", "edit", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rule_fails_on_bad_input(spec_dir: SpecDir, rule: str, edit: tuple[str, str], expected: str) -> None:
    assert edit[0] in SMALL_SPEC, f"fixture no longer contains {edit[0]!r}"
    found = messages(spec_dir, SMALL_SPEC.replace(edit[0], edit[1]))
    assert any(expected in m for m in found), found
    assert all(":" in m.split(" ")[0] for m in found), "every message starts with FILE:LINE:COL"


def test_rules_pass_on_the_small_spec(spec_dir: SpecDir) -> None:
    ok(spec_dir, SMALL_SPEC)


def test_dev_relaxes_consensus_sanity_to_warnings(spec_dir: SpecDir) -> None:
    text = SMALL_SPEC.replace("        - {name: d-val-0, role: validator, power: 10}\n", "")
    found = messages(spec_dir, text, env="dev")
    assert any("warning:" in m and "cannot tolerate" in m for m in found)


def test_development_tier_relaxes_consensus_sanity_without_env(spec_dir: SpecDir) -> None:
    text = SMALL_SPEC.replace("        - {name: d-val-0, role: validator, power: 10}\n", "").replace(
        "spec:\n", "spec:\n  tier: development\n", 1)
    found = messages(spec_dir, text)
    assert any("warning:" in m and "cannot tolerate" in m for m in found), found


@pytest.mark.parametrize("tier", ["staging", "production"])
def test_an_explicit_tier_overrides_the_dev_name(spec_dir: SpecDir, tier: str) -> None:
    text = SMALL_SPEC.replace("        - {name: d-val-0, role: validator, power: 10}\n", "")
    spec_dir.write(text)
    spec_dir.overlay("dev", f"spec: {{tier: {tier}}}\n")
    with pytest.raises(InvalidInput) as info:
        load_spec(spec_dir.spec, "dev")
    (error,) = [d for d in info.value.diagnostics if d.severity == "error"]
    assert "cannot tolerate a faulty one" in error.message and "development tier" in error.message


def test_one_third_is_a_warning(spec_dir: SpecDir) -> None:
    text = SMALL_SPEC.replace("{name: a-val-0, role: validator, power: 10}", "{name: a-val-0, role: validator, power: 20}")
    found = messages(spec_dir, text)
    assert any("warning:" in m and 'organization "org-a" holds 40% of voting power (>= 1/3)' in m for m in found)


def test_missing_baa_is_not_a_validation_error(spec_dir: SpecDir) -> None:
    ok(spec_dir, SMALL_SPEC.replace("      baa: {signed: true, signedOn: 2026-01-01}\n", ""))


def test_long_node_names_fail_only_on_kubernetes(spec_dir: SpecDir) -> None:
    name = "d-obs-" + "x" * 46  # 52 characters: the longest a StatefulSet accepts
    ok(spec_dir, SMALL_SPEC.replace("name: d-obs-0", f"name: {name}").replace(
        "  organizations:", "  provider: {type: kubernetes}\n  organizations:"))
    longer = SMALL_SPEC.replace("name: d-obs-0", f"name: {name}y")
    (warning,) = messages(spec_dir, longer)
    assert "warning:" in warning and "at most 52" in warning and "spec.organizations[3].nodes[1].name" in warning
    found = messages(spec_dir, longer.replace("  organizations:", "  provider: {type: kubernetes}\n  organizations:"))
    assert any("error:" in m and "at most 52" in m for m in found), found

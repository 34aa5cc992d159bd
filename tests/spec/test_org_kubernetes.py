"""spec.organizations[].kubernetes: an organization's own namespace and kube context, checked where written."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hcops.errors import InvalidInput
from hcops.spec.loader import load_spec
from tests.conftest import SMALL_SPEC, SpecDir

A = "    - name: org-a\n      role: provider\n"
B = "    - name: org-b\n      role: payer\n"


def with_places(a: str = "", b: str = "") -> str:
    text = SMALL_SPEC.replace("  organizations:", "  provider: {type: kubernetes, kubernetes: {context: ops}}\n"
                                                  "  organizations:")
    if a:
        text = text.replace(A, A + f"      kubernetes: {a}\n")
    if b:
        text = text.replace(B, B + f"      kubernetes: {b}\n")
    return text


def errors(spec_dir: SpecDir, text: str) -> list[str]:
    spec_dir.write(text)
    with pytest.raises(InvalidInput) as err:
        load_spec(spec_dir.spec)
    return [d.format() for d in err.value.diagnostics]


def test_places_default_to_the_network_and_are_declared_per_organization(spec_dir: SpecDir) -> None:
    spec_dir.write(with_places(a="{namespace: stmary, context: stmary-admin}", b="{namespace: bluecross}"))
    c = load_spec(spec_dir.spec).consortium
    assert c.kube_place("org-a") == ("stmary-admin", "stmary")
    assert c.kube_place("org-b") == ("ops", "bluecross")  # the network's context
    assert c.kube_place("org-c") == ("ops", "small-net")  # nothing declared: the network's place
    org = c.spec.organizations[0]
    assert org.kubernetes is not None and org.kubernetes.namespace == "stmary"
    with pytest.raises(ValidationError):  # frozen
        org.kubernetes.namespace = "x"  # type: ignore[misc]


def test_an_unset_place_keeps_the_spec_hash_dump(spec_dir: SpecDir) -> None:
    spec_dir.write(SMALL_SPEC)
    dump = load_spec(spec_dir.spec).consortium.model_dump(mode="json", by_alias=True)
    assert all("kubernetes" not in o for o in dump["spec"]["organizations"])


@pytest.mark.parametrize(("place", "expected"), [
    ("{namespace: Bad_NS}", "spec.organizations[0].kubernetes.namespace: expected a DNS-1123 label"),
    ("{namespace: stmary, contxt: x}", "spec.organizations[0].kubernetes.contxt: unknown field"),
    ("{context: ''}", "spec.organizations[0].kubernetes.context"),
    ("[stmary]", "spec.organizations[0].kubernetes"),
])
def test_bad_places_are_reported_where_written(spec_dir: SpecDir, place: str, expected: str) -> None:
    found = errors(spec_dir, with_places(a=place))
    line = with_places(a=place).splitlines().index(f"      kubernetes: {place}") + 1
    assert any(expected in m and f"network.yaml:{line}:" in m for m in found), found


def test_two_organizations_in_one_declared_namespace_are_refused(spec_dir: SpecDir) -> None:
    found = errors(spec_dir, with_places(a="{namespace: shared}", b="{namespace: shared}"))
    assert any("spec.organizations[0].kubernetes.namespace" in m and "organization(s) org-b" in m for m in found)
    assert any("spec.organizations[1].kubernetes.namespace" in m and "organization(s) org-a" in m for m in found)
    # A declared namespace equal to the network's, where organizations without a place of their own run.
    found = errors(spec_dir, with_places(a="{namespace: small-net}"))
    assert any("organization(s) org-b, org-c, org-d" in m for m in found), found
    # Another context does not make it another place: a context names credentials, and two of them may
    # reach one cluster, where each member's --org apply would prune the other's objects.
    found = errors(spec_dir, with_places(a="{namespace: shared, context: a}", b="{namespace: shared, context: b}"))
    assert any("spec.organizations[1].kubernetes.namespace" in m and "organization(s) org-a" in m for m in found)
    found = errors(spec_dir, with_places(a="{context: a}"))  # only a context: still the network's namespace
    assert any("spec.organizations[0].kubernetes.context" in m and "org-b, org-c, org-d" in m for m in found)

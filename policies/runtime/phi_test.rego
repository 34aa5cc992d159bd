package hcops.runtime.phi_test

import rego.v1

import data.hcops.runtime.phi as policy
import data.hcops.runtime.testdata as td

denies(doc) := r if {
	r := policy.deny with input.kind as doc.kind
		with input.network as doc.network
		with input.spec as doc.spec
		with input.nodes as doc.nodes
		with input.chain as doc.chain
		with input.audit as doc.audit
		with input.phi as doc.phi
}

test_clean_chain_passes if {
	count(denies(td.clean)) == 0
}

test_identifier_fires_under_none if {
	doc := td.patched([{"op": "add", "path": "/phi/hits/-", "value": {"height": 97, "txHash": td.tx_a, "kind": "ssn"}}])
	some f in td.with_id(denies(doc), "HC-RT-PHI1-IDENTIFIER-ON-CHAIN")
	f.resource == concat("/", ["tx", td.tx_a])
	contains(f.msg, "at height 97")
	contains(f.msg, "kind ssn")
	f.path == "spec.data.phiOnChain"
}

test_identifier_fires_under_hashes_only if {
	doc := td.patched([
		{"op": "replace", "path": "/spec/data/phiOnChain", "value": "hashes-only"},
		{"op": "add", "path": "/phi/hits/-", "value": {"height": 97, "txHash": td.tx_a, "kind": "email"}},
	])
	count(td.with_id(denies(doc), "HC-RT-PHI1-IDENTIFIER-ON-CHAIN")) == 1
}

test_nothing_fires_when_phi_is_allowed if {
	doc := td.patched([
		{"op": "replace", "path": "/spec/data/phiOnChain", "value": "allowed"},
		{"op": "add", "path": "/phi/hits/-", "value": {"height": 97, "txHash": td.tx_a, "kind": "ssn"}},
	])
	count(denies(doc)) == 0
}

test_not_a_digest_fires_under_hashes_only if {
	doc := td.patched([
		{"op": "replace", "path": "/spec/data/phiOnChain", "value": "hashes-only"},
		{"op": "add", "path": "/phi/hits/-", "value": {"height": 98, "txHash": td.tx_a, "kind": "not-a-digest"}},
	])
	some f in td.with_id(denies(doc), "HC-RT-PHI1-NOT-A-DIGEST")
	contains(f.msg, "at height 98")
	not "HC-RT-PHI1-IDENTIFIER-ON-CHAIN" in td.ids(denies(doc))
}

test_not_a_digest_is_no_finding_under_none if {
	doc := td.patched([{"op": "add", "path": "/phi/hits/-", "value": {"height": 98, "txHash": td.tx_a, "kind": "not-a-digest"}}])
	count(denies(doc)) == 0
}

test_nothing_fires_on_a_gate_input if {
	r := policy.deny with input.kind as "Consortium"
		with input.phi as {"hits": [{"height": 1, "txHash": "AB", "kind": "ssn"}]}
	count(r) == 0
}

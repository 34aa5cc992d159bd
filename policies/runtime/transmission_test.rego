package hcops.runtime.transmission_test

import rego.v1

import data.hcops.runtime.testdata as td
import data.hcops.runtime.transmission as policy

denies(doc) := r if {
	r := policy.deny with input.kind as doc.kind
		with input.network as doc.network
		with input.spec as doc.spec
		with input.nodes as doc.nodes
		with input.undeclared as doc.undeclared
		with input.chain as doc.chain
		with input.audit as doc.audit
}

test_clean_network_passes if {
	count(denies(td.clean)) == 0
}

test_plaintext_rpc_fires if {
	doc := td.patched([{"op": "add", "path": "/undeclared/-", "value": td.rogue}])
	some f in td.with_id(denies(doc), "HC-RT-TS1-PLAINTEXT-RPC")
	f.resource == "container/small-net-rogue"
}

test_plaintext_rpc_passes_with_tls if {
	doc := td.patched([
		{"op": "add", "path": "/undeclared/-", "value": td.rogue},
		{"op": "replace", "path": "/spec/rpc/tls", "value": true},
	])
	count(denies(doc)) == 0
}

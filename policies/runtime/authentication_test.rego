package hcops.runtime.authentication_test

import rego.v1

import data.hcops.runtime.authentication as policy
import data.hcops.runtime.testdata as td

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

test_unknown_peer_fires if {
	doc := td.patched([{"op": "add", "path": "/nodes/0/rpc/peers/-", "value": "dddddddddddddddddddddddddddddddddddddddd"}])
	some f in td.with_id(denies(doc), "HC-RT-PA1-UNKNOWN-PEER")
	f.resource == "node/a-val-0"
	contains(f.msg, "dddddddddddddddddddddddddddddddddddddddd")
}

test_peer_ids_compare_case_insensitively if {
	doc := td.patched([{"op": "replace", "path": "/nodes/0/rpc/peers/0", "value": upper(td.id_b)}])
	count(denies(doc)) == 0
}

package hcops.runtime.audit_test

import rego.v1

import data.hcops.runtime.audit as policy
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

test_sweep_overdue_fires if {
	doc := td.patched([{"op": "replace", "path": "/audit/previousSweepAgeNs", "value": 3600000000000}])
	some f in td.with_id(denies(doc), "HC-RT-AR1-SWEEP-OVERDUE")
	f.resource == "network/small-net"
	contains(f.msg, "3600s ago")
}

test_first_sweep_is_not_overdue if {
	doc := td.patched([{"op": "replace", "path": "/audit/previousSweepAgeNs", "value": null}])
	count(denies(doc)) == 0
}

test_broken_log_fires if {
	doc := td.patched([
		{"op": "replace", "path": "/audit/logIntact", "value": false},
		{"op": "replace", "path": "/audit/logBreak", "value": "record 7: content does not match its hash"},
	])
	some f in td.with_id(denies(doc), "HC-RT-AU1-LOG-BROKEN")
	contains(f.msg, "record 7")
}

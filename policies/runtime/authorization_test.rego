package hcops.runtime.authorization_test

import rego.v1

import data.hcops.runtime.authorization as policy
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

test_undeclared_container_fires if {
	doc := td.patched([{"op": "add", "path": "/undeclared/-", "value": td.rogue}])
	some f in td.with_id(denies(doc), "HC-RT-AZ1-UNDECLARED")
	f.resource == "container/small-net-rogue"
	contains(f.msg, "not declared in the spec")
}

test_undeclared_pod_is_named_as_a_pod if {
	doc := td.patched([{"op": "add", "path": "/undeclared/-", "value": {"kind": "pod", "name": "x-0", "state": "Running", "ports": []}}])
	some f in td.with_id(denies(doc), "HC-RT-AZ1-UNDECLARED")
	f.resource == "pod/x-0"
}

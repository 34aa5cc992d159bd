package hcops.runtime.access_control_test

import rego.v1

import data.hcops.runtime.access_control as policy
import data.hcops.runtime.testdata as td

denies(doc) := r if {
	r := policy.deny with input.kind as doc.kind
		with input.network as doc.network
		with input.spec as doc.spec
		with input.nodes as doc.nodes
		with input.undeclared as doc.undeclared
		with input.chain as doc.chain
		with input.audit as doc.audit
		with input.tier as doc.tier
		with input.attestations as doc.attestations
}

test_clean_network_passes if {
	count(denies(td.clean)) == 0
}

test_rpc_exposed_fires_for_a_node if {
	doc := td.patched([{"op": "replace", "path": "/nodes/1/ports/0/hostIp", "value": "0.0.0.0"}])
	some f in td.with_id(denies(doc), "HC-RT-AC1-RPC-EXPOSED")
	f.resource == "node/b-val-0"
	f.path == "spec.network.rpc.exposure"
}

test_rpc_exposed_fires_for_an_undeclared_container if {
	doc := td.patched([{"op": "add", "path": "/undeclared/-", "value": td.rogue}])
	some f in td.with_id(denies(doc), "HC-RT-AC1-RPC-EXPOSED")
	f.resource == "container/small-net-rogue"
}

test_rpc_exposed_passes_when_exposure_allows if {
	doc := td.patched([
		{"op": "replace", "path": "/nodes/1/ports/0/hostIp", "value": "0.0.0.0"},
		{"op": "replace", "path": "/spec/rpc/exposure", "value": "consortium"},
	])
	not "HC-RT-AC1-RPC-EXPOSED" in td.ids(denies(doc))
}

test_rpc_on_other_loopback_passes if {
	doc := td.patched([{"op": "replace", "path": "/nodes/1/ports/0/hostIp", "value": "127.0.0.2"}])
	not "HC-RT-AC1-RPC-EXPOSED" in td.ids(denies(doc))
}

test_identity_mismatch_fires if {
	doc := td.patched([{"op": "replace", "path": "/nodes/0/rpc/nodeId", "value": "cccccccccccccccccccccccccccccccccccccccc"}])
	some f in td.with_id(denies(doc), "HC-RT-AC2-IDENTITY-MISMATCH")
	f.resource == "node/a-val-0"
}

test_validator_address_mismatch_fires if {
	doc := td.patched([{"op": "replace", "path": "/nodes/1/rpc/validatorAddress", "value": "CCCC"}])
	some f in td.with_id(denies(doc), "HC-RT-AC2-IDENTITY-MISMATCH")
	f.resource == "node/b-val-0"
}

test_key_file_mode_fires if {
	doc := td.patched([{"op": "replace", "path": "/nodes/0/keyFiles/1/mode", "value": "0644"}])
	some f in td.with_id(denies(doc), "HC-RT-AC5-KEY-FILE-MODE")
	f.resource == "node/a-val-0"
	contains(f.msg, "priv_validator_key.json has mode 0644")
}

test_key_file_mode_accepts_read_only_owner if {
	doc := td.patched([{"op": "replace", "path": "/nodes/0/keyFiles/1/mode", "value": "0400"}])
	count(td.with_id(denies(doc), "HC-RT-AC5-KEY-FILE-MODE")) == 0
}

test_key_file_mode_ignores_missing_files if {
	doc := td.patched([
		{"op": "replace", "path": "/nodes/0/keyFiles/1/present", "value": false},
		{"op": "replace", "path": "/nodes/0/keyFiles/1/mode", "value": null},
	])
	count(denies(doc)) == 0
}

test_key_file_owner_fires if {
	doc := td.patched([{"op": "replace", "path": "/nodes/1/keyFiles/0/uid", "value": 0}])
	some f in td.with_id(denies(doc), "HC-RT-AC5-KEY-FILE-OWNER")
	f.resource == "node/b-val-0"
}

test_nothing_fires_on_a_gate_input if {
	r := policy.deny with input.kind as "Consortium"
		with input.nodes as [{"name": "x", "ports": [{"service": "rpc", "hostIp": "0.0.0.0", "hostPort": "1"}]}]
	count(r) == 0
}

test_storage_unverified_fires_in_production if {
	doc := td.patched([{"op": "replace", "path": "/tier", "value": "production"}])
	some f in td.with_id(denies(doc), "HC-RT-AC5-STORAGE-UNVERIFIED")
	f.resource == "node/a-val-0"
	contains(f.msg, "neither measured nor attested")
}

test_storage_unverified_passes_when_measured if {
	doc := td.patched([
		{"op": "replace", "path": "/tier", "value": "production"},
		{"op": "replace", "path": "/nodes/0/storage/encrypted", "value": true},
		{"op": "replace", "path": "/nodes/1/storage/encrypted", "value": true},
	])
	count(td.with_id(denies(doc), "HC-RT-AC5-STORAGE-UNVERIFIED")) == 0
}

test_storage_unverified_passes_when_attested if {
	doc := td.patched([
		{"op": "replace", "path": "/tier", "value": "production"},
		{"op": "replace", "path": "/attestations/active", "value": ["AC-5"]},
	])
	count(td.with_id(denies(doc), "HC-RT-AC5-STORAGE-UNVERIFIED")) == 0
}

test_storage_unverified_fires_without_storage_facts if {
	doc := td.patched([
		{"op": "replace", "path": "/tier", "value": "production"},
		{"op": "remove", "path": "/nodes/1/storage"},
		{"op": "replace", "path": "/nodes/0/storage/encrypted", "value": true},
	])
	some f in td.with_id(denies(doc), "HC-RT-AC5-STORAGE-UNVERIFIED")
	f.resource == "node/b-val-0"
}

test_storage_declared_only_is_no_finding_outside_production if {
	doc := td.patched([{"op": "replace", "path": "/tier", "value": "staging"}])
	count(denies(doc)) == 0
}

package hcops.runtime.contingency_test

import rego.v1

import data.hcops.runtime.contingency as policy
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

test_stopped_node_fires if {
	doc := td.patched([
		{"op": "replace", "path": "/nodes/1/state", "value": "exited"},
		{"op": "replace", "path": "/nodes/1/running", "value": false},
		{"op": "replace", "path": "/nodes/1/up", "value": false},
	])
	some f in td.with_id(denies(doc), "HC-RT-CP1-NODE-DOWN")
	f.resource == "node/b-val-0"
	contains(f.msg, "container exited")
}

test_absent_node_fires if {
	doc := td.patched([
		{"op": "replace", "path": "/nodes/0/present", "value": false},
		{"op": "replace", "path": "/nodes/0/up", "value": false},
	])
	some f in td.with_id(denies(doc), "HC-RT-CP1-NODE-DOWN")
	contains(f.msg, "no container")
}

test_silent_rpc_fires if {
	doc := td.patched([
		{"op": "replace", "path": "/nodes/0/up", "value": false},
		{"op": "replace", "path": "/nodes/0/rpc/error", "value": "connection refused"},
	])
	some f in td.with_id(denies(doc), "HC-RT-CP1-NODE-DOWN")
	contains(f.msg, "connection refused")
}

test_old_block_means_stalled if {
	doc := td.patched([{"op": "replace", "path": "/chain/latestBlockAgeNs", "value": 9000000000}])
	some f in td.with_id(denies(doc), "HC-RT-CP1-CHAIN-STALLED")
	f.resource == "network/small-net"
	contains(f.msg, "9s old")
}

test_height_not_advanced_means_stalled if {
	doc := td.patched([
		{"op": "replace", "path": "/chain/heightAdvanced", "value": false},
		{"op": "replace", "path": "/chain/previous/height", "value": 120},
	])
	some f in td.with_id(denies(doc), "HC-RT-CP1-CHAIN-STALLED")
	contains(f.msg, "did not advance")
}

test_height_not_advanced_in_a_short_time_passes if {
	doc := td.patched([
		{"op": "replace", "path": "/chain/heightAdvanced", "value": false},
		{"op": "replace", "path": "/chain/previous/elapsedNs", "value": 1000000000},
	])
	count(denies(doc)) == 0
}

test_no_reachable_node_means_stalled if {
	doc := td.patched([{"op": "replace", "path": "/chain/reachableNodes", "value": 0}])
	"HC-RT-CP1-CHAIN-STALLED" in td.ids(denies(doc))
}

test_validator_not_signing_fires if {
	doc := td.patched([
		{"op": "replace", "path": "/chain/recentCommits/0/signers", "value": [td.addr_a]},
		{"op": "replace", "path": "/chain/recentCommits/1/signers", "value": [td.addr_a]},
		{"op": "replace", "path": "/chain/recentCommits/2/signers", "value": [td.addr_a]},
	])
	some f in td.with_id(denies(doc), "HC-RT-CP1-VALIDATOR-NOT-SIGNING")
	f.resource == "node/b-val-0"
}

test_validator_signing_in_one_recent_commit_passes if {
	doc := td.patched([
		{"op": "replace", "path": "/chain/recentCommits/0/signers", "value": [td.addr_a]},
		{"op": "replace", "path": "/chain/recentCommits/1/signers", "value": [td.addr_a]},
	])
	count(denies(doc)) == 0
}

test_validator_set_power_change_fires if {
	doc := td.patched([{"op": "replace", "path": "/chain/validatorSet/1/power", "value": 30}])
	found := td.with_id(denies(doc), "HC-RT-CP1-VALIDATOR-SET")
	count(found) == 2
}

test_validator_set_extra_member_fires if {
	doc := td.patched([{"op": "add", "path": "/chain/validatorSet/-", "value": {"address": "EEEE", "power": 10}}])
	some f in td.with_id(denies(doc), "HC-RT-CP1-VALIDATOR-SET")
	contains(f.msg, "EEEE")
}

test_validator_set_unknown_when_no_node_answers if {
	doc := td.patched([
		{"op": "replace", "path": "/chain/validatorSet", "value": []},
		{"op": "replace", "path": "/chain/validatorSetFrom", "value": null},
	])
	not "HC-RT-CP1-VALIDATOR-SET" in td.ids(denies(doc))
}

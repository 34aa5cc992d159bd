package hcops.runtime.integrity_test

import rego.v1

import data.hcops.runtime.integrity as policy
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

digest := "sha256:2222222222222222222222222222222222222222222222222222222222222222"

test_clean_network_passes if {
	count(denies(td.clean)) == 0
}

test_image_mismatch_fires if {
	doc := td.patched([{"op": "replace", "path": "/nodes/0/image/reference", "value": "cometbft/cometbft:v0.38.0"}])
	some f in td.with_id(denies(doc), "HC-RT-IN1-IMAGE-MISMATCH")
	f.resource == "node/a-val-0"
}

test_pinned_digest_missing_fires if {
	pinned := sprintf("%s@%s", [td.image, digest])
	doc := td.patched([
		{"op": "replace", "path": "/nodes/0/expected/image", "value": pinned},
		{"op": "replace", "path": "/nodes/0/image/reference", "value": pinned},
	])
	some f in td.with_id(denies(doc), "HC-RT-IN1-DIGEST-DRIFT")
	f.resource == "node/a-val-0"
}

test_pinned_digest_present_passes if {
	pinned := sprintf("%s@%s", [td.image, digest])
	doc := td.patched([
		{"op": "replace", "path": "/nodes/0/expected/image", "value": pinned},
		{"op": "replace", "path": "/nodes/0/image/reference", "value": pinned},
		{"op": "replace", "path": "/nodes/0/image/repoDigests", "value": [sprintf("cometbft/cometbft@%s", [digest])]},
	])
	count(denies(doc)) == 0
}

test_same_reference_different_content_fires if {
	doc := td.patched([
		{"op": "replace", "path": "/nodes/1/image/id", "value": digest},
		{"op": "replace", "path": "/nodes/1/image/previousId", "value": digest},
	])
	ids := {f.resource | some f in td.with_id(denies(doc), "HC-RT-IN1-DIGEST-DRIFT")}
	ids == {"node/a-val-0", "node/b-val-0"}
}

test_content_changed_since_previous_sweep_fires if {
	doc := td.patched([{"op": "replace", "path": "/nodes/0/image/previousId", "value": digest}])
	some f in td.with_id(denies(doc), "HC-RT-IN1-DIGEST-DRIFT")
	contains(f.msg, "changed since the previous sweep")
}

test_first_sweep_has_no_previous_content if {
	doc := td.patched([{"op": "replace", "path": "/nodes/0/image/previousId", "value": null}])
	count(denies(doc)) == 0
}

test_writable_root_fires if {
	doc := td.patched([{"op": "replace", "path": "/nodes/1/readOnlyRootFs", "value": false}])
	some f in td.with_id(denies(doc), "HC-RT-IN1-ROOTFS-WRITABLE")
	f.resource == "node/b-val-0"
}

test_absent_node_is_not_checked_for_image if {
	doc := td.patched([
		{"op": "replace", "path": "/nodes/1/present", "value": false},
		{"op": "replace", "path": "/nodes/1/readOnlyRootFs", "value": false},
		{"op": "replace", "path": "/nodes/1/image/reference", "value": ""},
	])
	count(denies(doc)) == 0
}

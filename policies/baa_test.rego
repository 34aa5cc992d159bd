package hcops.hipaa.baa_test

import rego.v1

import data.hcops.hipaa.baa as policy
import data.hcops.hipaa.testdata as td

# The findings of this package for a whole input document (key by key, see testdata_test.rego).
denies(doc) := r if {
	r := policy.deny with input.metadata as doc.metadata
		with input.environment as doc.environment
		with input.spec as doc.spec
		with input.organizations as doc.organizations
		with input.nodes as doc.nodes
		with input.chain as doc.chain
		with input.manifests as doc.manifests
}

warns(doc) := r if {
	r := policy.warn with input.metadata as doc.metadata
		with input.environment as doc.environment
		with input.spec as doc.spec
		with input.organizations as doc.organizations
		with input.nodes as doc.nodes
		with input.chain as doc.chain
		with input.manifests as doc.manifests
}

patched(ops) := json.patch(td.example, ops)

# --- HC-AZ1-BAA-MISSING

test_baa_missing_fires if {
	findings := td.with_id(denies(td.violations["HC-AZ1-BAA-MISSING"]), "HC-AZ1-BAA-MISSING")
	count(findings) == 1
	some f in findings
	f.resource == "org/bluecross-payer"
	f.path == "spec.organizations[2].baa"
}

test_baa_missing_fires_when_unsigned if {
	doc := patched([{"op": "add", "path": "/organizations/1/baa", "value": {"signed": false, "signedOn": null}}])
	some f in td.with_id(denies(doc), "HC-AZ1-BAA-MISSING")
	f.resource == "org/northside-clinic"
}

test_baa_missing_passes if {
	# the regulator (state-health-dept) runs an observer without a BAA
	not "HC-AZ1-BAA-MISSING" in td.ids(denies(td.example))
}

test_baa_missing_passes_for_org_without_nodes if {
	doc := patched([
		{"op": "add", "path": "/organizations/2/baa", "value": null},
		{"op": "add", "path": "/organizations/2/nodeCount", "value": 0},
	])
	not "HC-AZ1-BAA-MISSING" in td.ids(denies(doc))
}

# --- HC-AZ1-BAA-UNDATED

test_baa_undated_fires if {
	some f in td.with_id(warns(td.violations["HC-AZ1-BAA-UNDATED"]), "HC-AZ1-BAA-UNDATED")
	f.resource == "org/bluecross-payer"
	f.path == "spec.organizations[2].baa.signedOn"
}

test_baa_undated_passes if {
	not "HC-AZ1-BAA-UNDATED" in td.ids(warns(td.example))
}

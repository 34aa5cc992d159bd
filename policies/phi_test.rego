package hcops.hipaa.phi_test

import rego.v1

import data.hcops.hipaa.phi as policy
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

# --- HC-PHI1-PHI-ON-CHAIN

test_phi_on_chain_fires if {
	some f in td.with_id(denies(td.violations["HC-PHI1-PHI-ON-CHAIN"]), "HC-PHI1-PHI-ON-CHAIN")
	f.resource == "network/regional-health-net"
	f.path == "spec.data.phiOnChain"
}

test_phi_on_chain_fires_for_unknown_values if {
	unknown := patched([{"op": "add", "path": "/spec/data/phiOnChain", "value": "encrypted"}])
	"HC-PHI1-PHI-ON-CHAIN" in td.ids(denies(unknown))
	missing := patched([{"op": "remove", "path": "/spec/data/phiOnChain"}])
	"HC-PHI1-PHI-ON-CHAIN" in td.ids(denies(missing))
}

test_phi_on_chain_passes if {
	not "HC-PHI1-PHI-ON-CHAIN" in td.ids(denies(td.example))
	not "HC-PHI1-PHI-ON-CHAIN" in td.ids(denies(td.violations["HC-PHI1-HASHES-ONLY"]))
}

# --- HC-PHI1-TX-INDEX-PAYLOADS

test_tx_index_payloads_fires if {
	findings := td.with_id(denies(td.violations["HC-PHI1-TX-INDEX-PAYLOADS"]), "HC-PHI1-TX-INDEX-PAYLOADS")
	count(findings) == 5
	some f in findings
	f.resource == "node/stmary-val-0"
	f.path == "spec.data.txIndex"
}

test_tx_index_payloads_passes if {
	not "HC-PHI1-TX-INDEX-PAYLOADS" in td.ids(denies(td.example))
	indexes_non_phi := patched([{"op": "add", "path": "/nodes/0/config/tx_index/indexer", "value": "kv"}])
	not "HC-PHI1-TX-INDEX-PAYLOADS" in td.ids(denies(indexes_non_phi))
	hashes_unindexed := td.violations["HC-PHI1-HASHES-ONLY"]
	not "HC-PHI1-TX-INDEX-PAYLOADS" in td.ids(denies(hashes_unindexed))
}

# --- HC-PHI1-HASHES-ONLY

test_hashes_only_fires if {
	some f in td.with_id(warns(td.violations["HC-PHI1-HASHES-ONLY"]), "HC-PHI1-HASHES-ONLY")
	f.path == "spec.data.phiOnChain"
}

test_hashes_only_passes if {
	not "HC-PHI1-HASHES-ONLY" in td.ids(warns(td.example))
}

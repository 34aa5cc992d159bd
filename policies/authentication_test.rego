package hcops.hipaa.authentication_test

import rego.v1

import data.hcops.hipaa.authentication as policy
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

# --- HC-PA1-ADDR-BOOK-NOT-STRICT

test_addr_book_not_strict_fires if {
	findings := td.with_id(denies(td.violations["HC-PA1-ADDR-BOOK-NOT-STRICT"]), "HC-PA1-ADDR-BOOK-NOT-STRICT")
	count(findings) == 5
	some f in findings
	f.resource == "node/stmary-val-0"
	f.path == "spec.network.p2p.addrBookStrict"
}

test_addr_book_not_strict_passes if {
	not "HC-PA1-ADDR-BOOK-NOT-STRICT" in td.ids(denies(td.example))
	unset := patched([{"op": "remove", "path": "/nodes/0/config/p2p/addr_book_strict"}])
	not "HC-PA1-ADDR-BOOK-NOT-STRICT" in td.ids(denies(unset))
}

# --- HC-PA1-DUPLICATE-IP-ALLOWED

test_duplicate_ip_allowed_fires if {
	some f in td.with_id(denies(td.violations["HC-PA1-DUPLICATE-IP-ALLOWED"]), "HC-PA1-DUPLICATE-IP-ALLOWED")
	f.resource == "node/state-obs-0"
	f.path == "spec.network.p2p.allowDuplicateIp"
}

test_duplicate_ip_allowed_passes if {
	not "HC-PA1-DUPLICATE-IP-ALLOWED" in td.ids(denies(td.example))
}

# --- HC-PA1-PERSISTENT-PEERS-MISSING

test_persistent_peers_missing_fires if {
	findings := td.with_id(denies(td.violations["HC-PA1-PERSISTENT-PEERS-MISSING"]), "HC-PA1-PERSISTENT-PEERS-MISSING")
	count(findings) == 1
	some f in findings
	f.resource == "node/state-obs-0"
	contains(f.msg, "pex = false")
}

test_persistent_peers_missing_fires_with_pex if {
	doc := patched([
		{"op": "add", "path": "/nodes/2/config/p2p/persistent_peers", "value": " "},
		{"op": "add", "path": "/nodes/2/config/p2p/pex", "value": true},
	])
	some f in td.with_id(denies(doc), "HC-PA1-PERSISTENT-PEERS-MISSING")
	f.resource == "node/bluecross-val-0"
	contains(f.msg, "pex = true")
}

test_persistent_peers_missing_passes if {
	not "HC-PA1-PERSISTENT-PEERS-MISSING" in td.ids(denies(td.example))
}

test_persistent_peers_missing_passes_for_single_node if {
	doc := patched([
		{"op": "add", "path": "/nodes", "value": [td.example.nodes[0]]},
		{"op": "add", "path": "/nodes/0/config/p2p/persistent_peers", "value": ""},
	])
	not "HC-PA1-PERSISTENT-PEERS-MISSING" in td.ids(denies(doc))
}

# --- HC-PA1-PEX-ENABLED

test_pex_enabled_fires if {
	findings := td.with_id(warns(td.violations["HC-PA1-PEX-ENABLED"]), "HC-PA1-PEX-ENABLED")
	count(findings) == 5
	some f in findings
	f.path == "spec.network.p2p.pex"
}

test_pex_enabled_passes if {
	not "HC-PA1-PEX-ENABLED" in td.ids(warns(td.example))
}

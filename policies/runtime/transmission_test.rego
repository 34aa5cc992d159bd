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

	# (TS-2 then asks for the nodes' TLS measurements: see the tests below)
	not "HC-RT-TS1-PLAINTEXT-RPC" in td.ids(denies(doc))
}

# ------------------------------------------------------------------------------------------ TS-2
# The clean document with TLS on and both nodes measured as the sweep does (hcops.providers.tls):
# verified, plaintext refused, certificates valid for about a year after the sweep.
tls_ok := {
	"enabled": true, "endpoint": "127.0.0.1:26657", "serverName": "127.0.0.1", "handshake": true,
	"verified": true, "error": null, "protocol": "TLSv1.3", "notAfter": "2027-11-25T12:00:00Z",
	"notAfterNs": 1827144000000000000, "fingerprint": "ab", "plaintextRefused": true,
	"plaintextStatus": "HTTP 400",
}

tls_doc(ops) := json.patch(td.clean, array.concat(
	[
		{"op": "replace", "path": "/spec/rpc/tls", "value": true},
		{"op": "add", "path": "/nodes/0/rpc/tls", "value": tls_ok},
		{"op": "add", "path": "/nodes/1/rpc/tls", "value": tls_ok},
	],
	ops,
))

tls_denies(doc) := r if {
	r := policy.deny with input.kind as doc.kind
		with input.network as doc.network
		with input.spec as doc.spec
		with input.nodes as doc.nodes
		with input.undeclared as doc.undeclared
		with input.sweep as doc.sweep
}

tls_warns(doc) := r if {
	r := policy.warn with input.kind as doc.kind
		with input.network as doc.network
		with input.spec as doc.spec
		with input.nodes as doc.nodes
		with input.undeclared as doc.undeclared
		with input.sweep as doc.sweep
}

test_tls_verified_passes if {
	doc := tls_doc([])
	count(tls_denies(doc)) == 0
	count(tls_warns(doc)) == 0
}

test_tls_unverified_fires if {
	doc := tls_doc([{"op": "replace", "path": "/nodes/1/rpc/tls/verified", "value": false}])
	some f in td.with_id(tls_denies(doc), "HC-RT-TS2-RPC-TLS-UNVERIFIED")
	f.resource == "node/b-val-0"
	f.path == "spec.network.rpc.tls"
}

test_tls_unmeasured_fires if {
	doc := tls_doc([{"op": "remove", "path": "/nodes/0/rpc/tls"}])
	some f in td.with_id(tls_denies(doc), "HC-RT-TS2-RPC-TLS-UNVERIFIED")
	f.resource == "node/a-val-0"
}

test_tls_rules_ignore_stopped_nodes if {
	doc := tls_doc([
		{"op": "remove", "path": "/nodes/0/rpc/tls"},
		{"op": "replace", "path": "/nodes/0/running", "value": false},
	])
	count(tls_denies(doc)) == 0
}

test_tls_rules_ignore_networks_without_tls if {
	doc := tls_doc([
		{"op": "replace", "path": "/spec/rpc/tls", "value": false},
		{"op": "replace", "path": "/nodes/0/rpc/tls/verified", "value": false},
		{"op": "replace", "path": "/nodes/0/rpc/tls/notAfterNs", "value": 1},
	])
	count(tls_denies(doc)) == 0
	count(tls_warns(doc)) == 0
}

test_plaintext_accepted_fires if {
	doc := tls_doc([{"op": "replace", "path": "/nodes/0/rpc/tls/plaintextRefused", "value": false}])
	ids := td.ids(tls_denies(doc))
	ids == {"HC-RT-TS2-RPC-PLAINTEXT-ACCEPTED"}
}

test_cert_expired_fires_instead_of_unverified if {
	doc := tls_doc([
		{"op": "replace", "path": "/nodes/0/rpc/tls/verified", "value": false},
		{"op": "replace", "path": "/nodes/0/rpc/tls/notAfter", "value": "2026-11-25T11:00:00Z"},
		{"op": "replace", "path": "/nodes/0/rpc/tls/notAfterNs", "value": 1795604400000000000},
	])
	td.ids(tls_denies(doc)) == {"HC-RT-TS2-CERT-EXPIRED"}
	some f in tls_denies(doc)
	f.resource == "node/a-val-0"
	f.msg == "a-val-0 serves a certificate that expired at 2026-11-25T11:00:00Z"
}

test_cert_expiring_warns if {
	# 10 days after the sweep
	doc := tls_doc([
		{"op": "replace", "path": "/nodes/1/rpc/tls/notAfter", "value": "2026-12-05T12:00:00Z"},
		{"op": "replace", "path": "/nodes/1/rpc/tls/notAfterNs", "value": 1796472000000000000},
	])
	count(tls_denies(doc)) == 0
	some f in td.with_id(tls_warns(doc), "HC-RT-TS2-CERT-EXPIRING")
	f.resource == "node/b-val-0"
}

test_cert_expiring_passes_at_31_days if {
	doc := tls_doc([{"op": "replace", "path": "/nodes/1/rpc/tls/notAfterNs", "value": 1798286400500000000}])
	count(tls_warns(doc)) == 0
}

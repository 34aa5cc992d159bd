package hcops.hipaa.transmission_test

import rego.v1

import data.hcops.hipaa.testdata as td
import data.hcops.hipaa.transmission as policy

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

patched(ops) := json.patch(td.example, ops)

with_rpc(doc, exposure, tls) := json.patch(doc, [
	{"op": "add", "path": "/spec/network/rpc/exposure", "value": exposure},
	{"op": "add", "path": "/spec/network/rpc/tls", "value": tls},
])

# --- HC-TS2-RPC-TLS-MISSING

test_rpc_tls_missing_fires if {
	some f in td.with_id(denies(td.violations["HC-TS2-RPC-TLS-MISSING"]), "HC-TS2-RPC-TLS-MISSING")
	f.resource == "network/regional-health-net"
	f.path == "spec.network.rpc.tls"
}

test_rpc_tls_missing_fires_for_public if {
	"HC-TS2-RPC-TLS-MISSING" in td.ids(denies(with_rpc(td.example, "public", false)))
}

test_rpc_tls_missing_passes if {
	not "HC-TS2-RPC-TLS-MISSING" in td.ids(denies(td.example))
	not "HC-TS2-RPC-TLS-MISSING" in td.ids(denies(with_rpc(td.example, "consortium", true)))
	not "HC-TS2-RPC-TLS-MISSING" in td.ids(denies(with_rpc(td.example, "host", false)))
}

# --- HC-TS1-PLAINTEXT-RPC-PUBLISHED

test_plaintext_rpc_published_fires if {
	some f in td.with_id(denies(td.violations["HC-TS1-PLAINTEXT-RPC-PUBLISHED"]), "HC-TS1-PLAINTEXT-RPC-PUBLISHED")
	f.resource == "manifest/docker/service/stmary-val-0"
	f.path == "spec.network.rpc.tls"
}

test_plaintext_rpc_published_passes if {
	not "HC-TS1-PLAINTEXT-RPC-PUBLISHED" in td.ids(denies(td.example))
	with_tls := with_rpc(td.violations["HC-TS1-PLAINTEXT-RPC-PUBLISHED"], "consortium", true)
	not "HC-TS1-PLAINTEXT-RPC-PUBLISHED" in td.ids(denies(with_tls))
}

# --- HC-TS1-PLAINTEXT-RPC-SERVICE

test_plaintext_rpc_service_fires if {
	some f in td.with_id(denies(td.violations["HC-TS1-PLAINTEXT-RPC-SERVICE"]), "HC-TS1-PLAINTEXT-RPC-SERVICE")
	f.resource == "manifest/kubernetes/Service/stmary-val-0-rpc"
	f.path == "spec.network.rpc.tls"
}

test_plaintext_rpc_service_passes if {
	not "HC-TS1-PLAINTEXT-RPC-SERVICE" in td.ids(denies(td.example))
	with_tls := with_rpc(td.violations["HC-TS1-PLAINTEXT-RPC-SERVICE"], "consortium", true)
	not "HC-TS1-PLAINTEXT-RPC-SERVICE" in td.ids(denies(with_tls))
}

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

# The rendered config.toml of every node with the TLS settings hcops writes when tls is on.
tls_configs := [op |
	some i in td.node_indexes
	some op in [
		{"op": "add", "path": sprintf("/nodes/%d/config/rpc/tls_cert_file", [i]), "value": "rpc-tls-cert.pem"},
		{"op": "add", "path": sprintf("/nodes/%d/config/rpc/tls_key_file", [i]), "value": "rpc-tls-key.pem"},
	]
]

with_tls_rendered(doc) := json.patch(with_rpc(doc, "consortium", true), tls_configs)

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
	with_tls := with_tls_rendered(td.violations["HC-TS1-PLAINTEXT-RPC-PUBLISHED"])
	not "HC-TS1-PLAINTEXT-RPC-PUBLISHED" in td.ids(denies(with_tls))
}

# The rule judges the rendered config, not the spec: tls on in the spec, but a config.toml without
# the TLS files (a stale or hand-edited render) still publishes plaintext.
test_plaintext_rpc_published_judges_the_rendered_config if {
	doc := json.patch(with_tls_rendered(td.violations["HC-TS1-PLAINTEXT-RPC-PUBLISHED"]), [
		{"op": "remove", "path": "/nodes/0/config/rpc/tls_key_file"},
	])
	some f in td.with_id(denies(doc), "HC-TS1-PLAINTEXT-RPC-PUBLISHED")
	f.resource == "manifest/docker/service/stmary-val-0"
	not "HC-TS2-RPC-TLS-MISSING" in td.ids(denies(doc))
}

# A node container document (what `hcops apply` creates) publishing RPC on all interfaces.
test_plaintext_rpc_published_by_a_container_document if {
	doc := patched([{"op": "add", "path": "/manifests/dockerContainers/1/ports/0/host_ip", "value": "0.0.0.0"}])
	some f in td.with_id(denies(doc), "HC-TS1-PLAINTEXT-RPC-PUBLISHED")
	f.resource == "manifest/docker/container/regional-health-net-northside-val-0"
	not "HC-TS1-PLAINTEXT-RPC-PUBLISHED" in td.ids(denies(json.patch(with_tls_rendered(doc), [])))
}

# --- HC-TS1-PLAINTEXT-RPC-SERVICE

test_plaintext_rpc_service_fires if {
	some f in td.with_id(denies(td.violations["HC-TS1-PLAINTEXT-RPC-SERVICE"]), "HC-TS1-PLAINTEXT-RPC-SERVICE")
	f.resource == "manifest/kubernetes/Service/stmary-val-0-rpc"
	f.path == "spec.network.rpc.tls"
}

test_plaintext_rpc_service_passes if {
	not "HC-TS1-PLAINTEXT-RPC-SERVICE" in td.ids(denies(td.example))
	with_tls := with_tls_rendered(td.violations["HC-TS1-PLAINTEXT-RPC-SERVICE"])
	not "HC-TS1-PLAINTEXT-RPC-SERVICE" in td.ids(denies(with_tls))
}

# The Service selects st-mary's pod: only that node's config matters.
test_plaintext_rpc_service_judges_the_selected_node if {
	doc := json.patch(with_tls_rendered(td.violations["HC-TS1-PLAINTEXT-RPC-SERVICE"]), [
		{"op": "remove", "path": "/nodes/3/config/rpc/tls_cert_file"},
	])
	not "HC-TS1-PLAINTEXT-RPC-SERVICE" in td.ids(denies(doc))
	selected := json.patch(doc, [{"op": "remove", "path": "/nodes/0/config/rpc/tls_cert_file"}])
	"HC-TS1-PLAINTEXT-RPC-SERVICE" in td.ids(denies(selected))
}

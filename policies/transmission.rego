# HIPAA Security Rule 164.312(e): transmission security (catalogue TS-1, TS-2).
#
# P2P traffic is always encrypted and authenticated by CometBFT's SecretConnection, so the checks
# here concern the RPC endpoint, which is plain HTTP unless TLS is configured.
package hcops.hipaa.transmission

import rego.v1

import data.hcops.hipaa.lib

# METADATA
# title: RPC beyond the internal network without TLS
# description: >-
#   RPC exposure is `consortium` or `public` but spec.network.rpc.tls is not true: requests and
#   responses (transactions, query results) cross networks in clear text. Deny.
# scope: rule
# custom:
#   id: HC-TS2-RPC-TLS-MISSING
#   control: TS-2
#   hipaa:
#     - 164.312(e)(1)
#     - 164.312(e)(2)(ii)
#   severity: high
#   remediation: Set spec.network.rpc.tls to true (or keep exposure `internal`/`host`).
deny contains f if {
	lib.exposure in {"consortium", "public"}
	not lib.rpc_tls
	f := {
		"id": "HC-TS2-RPC-TLS-MISSING",
		"msg": sprintf("RPC exposure is `%s` but TLS is off", [lib.exposure]),
		"resource": lib.network_resource,
		"path": "spec.network.rpc.tls",
	}
}

# METADATA
# title: Plaintext RPC published beyond loopback (docker)
# description: >-
#   A compose service or a node container document publishes the RPC port on a non-loopback host
#   address while the node's rendered config.toml sets no TLS certificate and key (rpc.tls_cert_file,
#   rpc.tls_key_file): what would be deployed serves plaintext RPC to the network, whatever the spec
#   says. Judged on the output, so a hand-edited or stale manifest is caught too. Deny.
# scope: rule
# custom:
#   id: HC-TS1-PLAINTEXT-RPC-PUBLISHED
#   control: TS-1
#   hipaa:
#     - 164.312(e)(1)
#     - 164.312(e)(2)(i)
#   severity: high
#   remediation: >-
#     Publish the RPC port on 127.0.0.1 only, or set spec.network.rpc.tls to true and render again
#     (hcops then sets rpc.tls_cert_file and rpc.tls_key_file in every node's config.toml).
deny contains f if {
	some p in lib.docker_published
	some port in lib.rpc_ports
	lib.port_matches(p.target, port)
	not p.node in lib.tls_nodes
	f := {
		"id": "HC-TS1-PLAINTEXT-RPC-PUBLISHED",
		"msg": concat("", [p.kind, " ", p.service, " publishes plaintext RPC (port ", p.target, ") beyond loopback"]),
		"resource": p.resource,
		"path": "spec.network.rpc.tls",
	}
}

# METADATA
# title: Plaintext RPC exposed outside the cluster (kubernetes)
# description: >-
#   A NodePort or LoadBalancer Service exposes the RPC port outside the cluster while the rendered
#   config.toml of a node it selects (every node, when it does not select one by hcops.node) sets no
#   TLS certificate and key. Deny.
# scope: rule
# custom:
#   id: HC-TS1-PLAINTEXT-RPC-SERVICE
#   control: TS-1
#   hipaa:
#     - 164.312(e)(1)
#     - 164.312(e)(2)(i)
#   severity: high
#   remediation: Use a ClusterIP Service for RPC, or set spec.network.rpc.tls to true and render again.
deny contains f if {
	some svc in lib.k8s_external_services
	lib.k8s_service_exposes_rpc(svc)
	some n in input.nodes
	service_selects(svc, n)
	not lib.config_tls(n)
	f := {
		"id": "HC-TS1-PLAINTEXT-RPC-SERVICE",
		"msg": sprintf("Service %s of type %s exposes plaintext RPC outside the cluster", [svc.metadata.name, lib.service_type(svc)]),
		"resource": lib.k8s_resource(svc),
		"path": "spec.network.rpc.tls",
	}
}

# A Service selects a node's pod when its selector names the node (hcops.node or the
# app.kubernetes.io/instance label); one that names no node is taken to reach every node.
service_selects(svc, n) if n.name in node_selectors(svc)

service_selects(svc, _) if count(node_selectors(svc)) == 0

node_selectors(svc) := {v |
	some k in ["hcops.node", "app.kubernetes.io/instance"]
	v := object.get(svc, ["spec", "selector", k], null)
	is_string(v)
}

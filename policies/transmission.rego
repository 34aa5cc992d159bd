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
#   TLS is off and a compose service publishes the RPC port on a non-loopback host address, so
#   plaintext RPC is reachable from the network whatever the declared exposure. Deny.
# scope: rule
# custom:
#   id: HC-TS1-PLAINTEXT-RPC-PUBLISHED
#   control: TS-1
#   hipaa:
#     - 164.312(e)(1)
#     - 164.312(e)(2)(i)
#   severity: high
#   remediation: Publish the RPC port on 127.0.0.1 only, or set spec.network.rpc.tls to true.
deny contains f if {
	not lib.rpc_tls
	some p in lib.docker_published
	some port in lib.rpc_ports
	lib.port_matches(p.target, port)
	f := {
		"id": "HC-TS1-PLAINTEXT-RPC-PUBLISHED",
		"msg": concat("", ["service ", p.service, " publishes plaintext RPC (port ", p.target, ") beyond loopback"]),
		"resource": lib.docker_resource(p.service),
		"path": "spec.network.rpc.tls",
	}
}

# METADATA
# title: Plaintext RPC exposed outside the cluster (kubernetes)
# description: >-
#   TLS is off and a NodePort or LoadBalancer Service exposes the RPC port outside the cluster.
#   Deny.
# scope: rule
# custom:
#   id: HC-TS1-PLAINTEXT-RPC-SERVICE
#   control: TS-1
#   hipaa:
#     - 164.312(e)(1)
#     - 164.312(e)(2)(i)
#   severity: high
#   remediation: Use a ClusterIP Service for RPC, or set spec.network.rpc.tls to true.
deny contains f if {
	not lib.rpc_tls
	some svc in lib.k8s_external_services
	lib.k8s_service_exposes_rpc(svc)
	f := {
		"id": "HC-TS1-PLAINTEXT-RPC-SERVICE",
		"msg": sprintf("Service %s of type %s exposes plaintext RPC outside the cluster", [svc.metadata.name, lib.service_type(svc)]),
		"resource": lib.k8s_resource(svc),
		"path": "spec.network.rpc.tls",
	}
}

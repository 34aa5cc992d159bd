# Runtime checks of HIPAA 164.312(e) transmission security: no plaintext RPC reachable beyond the
# host (catalogue TS-1), and with TLS on, RPC that verifiably serves only TLS (TS-2).
package hcops.runtime.transmission

import rego.v1

import data.hcops.runtime.lib

# METADATA
# title: Plaintext RPC reachable from outside the host
# description: >-
#   An RPC port is published on a non-loopback host address and the spec does not turn TLS on:
#   requests and answers cross the network in clear text.
# scope: rule
# custom:
#   id: HC-RT-TS1-PLAINTEXT-RPC
#   control: TS-1
#   hipaa:
#     - 164.312(e)(1)
#     - 164.312(e)(2)(i)
#   severity: medium
#   remediation: Publish RPC on 127.0.0.1 only, or set spec.network.rpc.tls to true and terminate TLS in front of it.
deny contains f if {
	lib.is_facts
	not lib.rpc_tls
	some e in lib.exposed_rpc
	f := {
		"id": "HC-RT-TS1-PLAINTEXT-RPC",
		"msg": sprintf("%s serves plaintext RPC on %s:%s", [e.name, e.hostIp, e.hostPort]),
		"resource": e.resource,
		"path": "spec.network.rpc.tls",
	}
}

# ---------------------------------------------------------------------------------------------------
# TS-2: with spec.network.rpc.tls on, every RPC endpoint of a running node was measured by the sweep
# (nodes[].rpc.tls, hcops.providers.tls): a TLS handshake that verifies against the network's CA for the
# name hcops dials, and a plain HTTP request that gets no RPC answer. Certificate dates are judged
# against the sweep's own time.

day_ns := ((24 * 60) * 60) * 1000000000

expiry_warning_ns := 30 * day_ns

sweep_ns := object.get(input, ["sweep", "timeNs"], 0)

# Running nodes of a network whose spec turns TLS on, with what the sweep measured (null when nothing).
tls_endpoints contains {"node": n, "tls": tls_of(n)} if {
	lib.rpc_tls
	some n in lib.nodes
	n.running == true
}

# The node's TLS facts; {} when the sweep measured none (then nothing verified: fail closed).
tls_of(n) := t if {
	t := object.get(n, ["rpc", "tls"], {})
	is_object(t)
} else := {}

expired(t) if {
	is_number(object.get(t, "notAfterNs", null))
	t.notAfterNs <= sweep_ns
}

# METADATA
# title: RPC TLS not verified against the network CA
# description: >-
#   TLS is on in the spec but the sweep could not complete a TLS handshake with the node's RPC that
#   verifies against the network's CA for the name it dialled (no TLS, a certificate of another CA or
#   for other names), or measured nothing at all: transmissions cannot be shown to be protected. An
#   expired certificate is reported by HC-RT-TS2-CERT-EXPIRED instead.
# scope: rule
# custom:
#   id: HC-RT-TS2-RPC-TLS-UNVERIFIED
#   control: TS-2
#   hipaa:
#     - 164.312(e)(1)
#     - 164.312(e)(2)(ii)
#   severity: high
#   remediation: >-
#     Run `hcops apply` so that the node serves the certificate hcops issued from the network CA (state
#     folder tls/), or `hcops certs rotate` to issue new ones.
deny contains f if {
	lib.is_facts
	some e in tls_endpoints
	not e.tls.verified == true
	not expired(e.tls)
	f := {
		"id": "HC-RT-TS2-RPC-TLS-UNVERIFIED",
		"msg": sprintf("%s: TLS on its RPC did not verify against the network CA", [e.node.name]),
		"resource": lib.node_resource(e.node),
		"path": "spec.network.rpc.tls",
	}
}

# METADATA
# title: RPC answers plaintext HTTP although TLS is on
# description: >-
#   TLS is on in the spec but the node's RPC endpoint answered a plain HTTP request with an RPC result:
#   requests and answers can still cross the network in clear text.
# scope: rule
# custom:
#   id: HC-RT-TS2-RPC-PLAINTEXT-ACCEPTED
#   control: TS-2
#   hipaa:
#     - 164.312(e)(1)
#     - 164.312(e)(2)(ii)
#   severity: high
#   remediation: >-
#     Run `hcops apply`: the rendered config.toml sets rpc.tls_cert_file and rpc.tls_key_file, so that
#     CometBFT serves HTTPS only.
deny contains f if {
	lib.is_facts
	some e in tls_endpoints
	e.tls.plaintextRefused == false
	f := {
		"id": "HC-RT-TS2-RPC-PLAINTEXT-ACCEPTED",
		"msg": sprintf("%s answers plaintext HTTP on its RPC", [e.node.name]),
		"resource": lib.node_resource(e.node),
		"path": "spec.network.rpc.tls",
	}
}

# METADATA
# title: RPC certificate expired
# description: >-
#   The certificate the node's RPC serves expired before the sweep: clients that verify it (hcops
#   included) refuse the connection, and a client that does not verify gets no assurance of whom it
#   talks to.
# scope: rule
# custom:
#   id: HC-RT-TS2-CERT-EXPIRED
#   control: TS-2
#   hipaa:
#     - 164.312(e)(1)
#     - 164.312(e)(2)(ii)
#   severity: high
#   remediation: Run `hcops certs rotate -f SPEC` (renews every node's certificate with a rolling restart).
deny contains f if {
	lib.is_facts
	some e in tls_endpoints
	expired(e.tls)
	f := {
		"id": "HC-RT-TS2-CERT-EXPIRED",
		"msg": sprintf("%s serves a certificate that expired at %s", [e.node.name, e.tls.notAfter]),
		"resource": lib.node_resource(e.node),
		"path": "spec.network.rpc.tls",
	}
}

# METADATA
# title: RPC certificate expires within 30 days
# description: >-
#   The certificate the node's RPC serves expires within 30 days of the sweep. Warn, so that it is
#   renewed before clients start refusing it.
# scope: rule
# custom:
#   id: HC-RT-TS2-CERT-EXPIRING
#   control: TS-2
#   hipaa:
#     - 164.312(e)(2)(ii)
#   severity: medium
#   remediation: Run `hcops certs rotate -f SPEC` (renews every node's certificate with a rolling restart).
warn contains f if {
	lib.is_facts
	some e in tls_endpoints
	is_number(object.get(e.tls, "notAfterNs", null))
	e.tls.notAfterNs > sweep_ns
	e.tls.notAfterNs - sweep_ns < expiry_warning_ns
	f := {
		"id": "HC-RT-TS2-CERT-EXPIRING",
		"msg": sprintf("%s serves a certificate that expires at %s", [e.node.name, e.tls.notAfter]),
		"resource": lib.node_resource(e.node),
		"path": "spec.network.rpc.tls",
	}
}

# Runtime check of HIPAA 164.312(e) transmission security (catalogue TS-1): no plaintext RPC reachable
# beyond the host.
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

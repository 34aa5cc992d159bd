# Shared helpers of the runtime policies: they read the audit fact document (policies/runtime/README.md)
# built by hcops.audit.facts, never the gate's input. Every rule of the runtime pack starts with
# `lib.is_facts`, so that a runtime package handed a gate input (or anything else) finds nothing.
#
# Engine notes (regopy 1.5.2 and OPA must agree): no rego.metadata.*, no net.cidr_contains, no negated
# regex.match, concat() only over sorted arrays.
package hcops.runtime.lib

import rego.v1

is_facts if input.kind == "AuditFacts"

network := object.get(input, "network", "unnamed")

network_resource := sprintf("network/%s", [network])

node_resource(n) := sprintf("node/%s", [n.name])

container_resource(c) := sprintf("%s/%s", [object.get(c, "kind", "container"), c.name])

nodes := object.get(input, "nodes", [])

undeclared := object.get(input, "undeclared", [])

spec := object.get(input, "spec", {})

chain := object.get(input, "chain", {})

audit := object.get(input, "audit", {})

# How far the RPC may reach; a missing value is treated as the strictest ("host").
exposure := object.get(spec, ["rpc", "exposure"], "host")

# Exposures under which RPC may be published on a non-loopback host address.
published_beyond_host_allowed if exposure in {"consortium", "public"}

rpc_tls if object.get(spec, ["rpc", "tls"], false) == true

loopback(ip) if ip in {"127.0.0.1", "::1", "[::1]", "localhost"}

loopback(ip) if startswith(ip, "127.")

# RPC ports published on a non-loopback host address, by declared nodes and undeclared containers.
exposed_rpc contains {"resource": node_resource(n), "name": n.name, "hostIp": p.hostIp, "hostPort": p.hostPort} if {
	some n in nodes
	some p in object.get(n, "ports", [])
	p.service == "rpc"
	not loopback(p.hostIp)
}

exposed_rpc contains {"resource": container_resource(c), "name": c.name, "hostIp": p.hostIp, "hostPort": p.hostPort} if {
	some c in undeclared
	some p in object.get(c, "ports", [])
	p.service == "rpc"
	not loopback(p.hostIp)
}

# Node IDs of the consortium's declared nodes.
consortium_ids := {lower(id) | id := object.get(spec, "nodeIds", {})[_]}

# Seconds, for messages: ns_text(2500000000) == "2.5s" (one decimal, without float formatting, which
# the engines print differently).
ns_text(ns) := sprintf("%vs", [round(ns / 100000000) / 10])

spec_validators := {[upper(v.address), v.power] | some v in object.get(spec, "validators", [])}

live_validators := {[upper(v.address), v.power] | some v in object.get(chain, "validatorSet", [])}

# The tier the spec runs in (spec.tier, else from the environment's name); null when unspecified.
tier := object.get(input, "tier", null)

# spec.data.phiOnChain as declared, and the identifiers the sweeps found in committed transactions.
phi_policy := object.get(spec, ["data", "phiOnChain"], "none")

phi_hits := object.get(input, ["phi", "hits"], [])

# Controls with an attestation in effect (attestations.yaml: signed off, not expired).
attested := {c | some c in object.get(input, ["attestations", "active"], [])}

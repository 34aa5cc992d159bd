# PHI on the chain (catalogue PHI-1): 164.310(d)(2)(i) disposal and 164.514(b) de-identification.
#
# A blockchain cannot delete: whatever is written stays on every node for the life of the chain.
# PHI must therefore never be written on-chain, and nothing may build a searchable index of
# transaction payloads.
package hcops.hipaa.phi

import rego.v1

import data.hcops.hipaa.lib

# METADATA
# title: PHI allowed on chain
# description: >-
#   spec.data.phiOnChain is `allowed` (or not one of `none`, `hashes-only`): PHI written to the
#   chain can never be disposed of and is replicated to every member. Deny.
# scope: rule
# custom:
#   id: HC-PHI1-PHI-ON-CHAIN
#   control: PHI-1
#   hipaa:
#     - 164.310(d)(2)(i)
#     - 164.514(b)
#   severity: high
#   remediation: Set spec.data.phiOnChain to `none` or `hashes-only` and keep PHI off-chain.
deny contains f if {
	not lib.phi_on_chain in {"none", "hashes-only"}
	f := {
		"id": "HC-PHI1-PHI-ON-CHAIN",
		"msg": sprintf("spec.data.phiOnChain is %v: PHI may be written to the chain", [lib.phi_on_chain]),
		"resource": lib.network_resource,
		"path": "spec.data.phiOnChain",
	}
}

# METADATA
# title: Transaction payloads indexed
# description: >-
#   A node indexes transactions (tx_index.indexer is not `null`) while spec.data.phiOnChain is not
#   `none`: the index makes the payloads (hashes or worse) searchable by any RPC client. Deny.
# scope: rule
# custom:
#   id: HC-PHI1-TX-INDEX-PAYLOADS
#   control: PHI-1
#   hipaa:
#     - 164.310(d)(2)(i)
#     - 164.514(b)
#   severity: high
#   remediation: Set spec.data.txIndex to `off`, or keep spec.data.phiOnChain at `none`.
deny contains f if {
	lib.phi_on_chain != "none"
	some n in input.nodes
	indexer := object.get(n.config, ["tx_index", "indexer"], "kv")
	not indexer in {"null", ""}
	f := {
		"id": "HC-PHI1-TX-INDEX-PAYLOADS",
		"msg": sprintf("node %s indexes transactions (indexer %s) while phiOnChain is %v", [n.name, indexer, lib.phi_on_chain]),
		"resource": lib.node_resource(n),
		"path": "spec.data.txIndex",
	}
}

# METADATA
# title: Hashes of PHI on chain
# description: >-
#   spec.data.phiOnChain is `hashes-only`. Unsalted hashes of low-entropy identifiers (record
#   numbers, dates of birth) can be reversed by enumeration and then count as PHI. Warn.
# scope: rule
# custom:
#   id: HC-PHI1-HASHES-ONLY
#   control: PHI-1
#   hipaa:
#     - 164.514(b)
#   severity: low
#   remediation: >-
#     Write keyed hashes (HMAC with a per-consortium secret kept off-chain) or opaque pointers, and
#     document the de-identification method.
warn contains f if {
	lib.phi_on_chain == "hashes-only"
	f := {
		"id": "HC-PHI1-HASHES-ONLY",
		"msg": "spec.data.phiOnChain is `hashes-only`: make sure the hashes are keyed and cannot be reversed",
		"resource": lib.network_resource,
		"path": "spec.data.phiOnChain",
	}
}

# Runtime checks of HIPAA 164.514(b) de-identification and 164.310(d)(2)(i) disposal (catalogue PHI-1)
# on what the chain holds: every sweep reads the transactions committed since the previous one and
# reports each identifier it recognises as `phi.hits[{height, txHash, kind}]` (never the value). A
# transaction on chain cannot be removed, so hits stay in the facts after the sweep that found them.
package hcops.runtime.phi

import rego.v1

import data.hcops.runtime.lib

# METADATA
# title: Identifier in a transaction on chain
# description: >-
#   A committed transaction carries an identifier that HIPAA's Safe Harbor method removes (a social
#   security, telephone or medical record number, an email or IP address, a full date, a URL with a
#   query) while spec.data.phiOnChain says the chain holds no PHI (none) or only digests and pointers
#   (hashes-only). Every node keeps a copy, and the chain cannot forget it.
# scope: rule
# custom:
#   id: HC-RT-PHI1-IDENTIFIER-ON-CHAIN
#   control: PHI-1
#   hipaa:
#     - 164.514(b)(2)
#     - 164.310(d)(2)(i)
#   severity: high
#   remediation: >-
#     Treat it as a possible breach: tell the privacy officer (164.402 risk assessment), find and fix the
#     application that wrote it so that it writes a digest or pointer instead, and document the decision
#     (a waiver on this finding's resource) since the transaction stays on every node.
deny contains f if {
	lib.is_facts
	lib.phi_policy in {"none", "hashes-only"}
	some h in lib.phi_hits
	h.kind != "not-a-digest"
	f := {
		"id": "HC-RT-PHI1-IDENTIFIER-ON-CHAIN",
		"msg": sprintf("transaction %s at height %v carries an identifier of kind %s (the value is not shown)", [h.txHash, h.height, h.kind]),
		"resource": sprintf("tx/%s", [h.txHash]),
		"path": "spec.data.phiOnChain",
	}
}

# METADATA
# title: Transaction value that is not a digest or pointer
# description: >-
#   spec.data.phiOnChain is hashes-only, but a committed transaction's value is neither a digest
#   (SHA-256 in hex or base64) nor an opaque pointer (a UUID or URN): data that may identify a person
#   is on chain in the clear.
# scope: rule
# custom:
#   id: HC-RT-PHI1-NOT-A-DIGEST
#   control: PHI-1
#   hipaa:
#     - 164.514(b)
#   severity: high
#   remediation: >-
#     Make the writing application store a salted digest or a pointer into the off-chain record system,
#     check with the privacy officer what the value held, and document the decision (a waiver on this
#     finding's resource).
deny contains f if {
	lib.is_facts
	lib.phi_policy == "hashes-only"
	some h in lib.phi_hits
	h.kind == "not-a-digest"
	f := {
		"id": "HC-RT-PHI1-NOT-A-DIGEST",
		"msg": sprintf("transaction %s at height %v holds a value that is neither a digest nor a pointer", [h.txHash, h.height]),
		"resource": sprintf("tx/%s", [h.txHash]),
		"path": "spec.data.phiOnChain",
	}
}

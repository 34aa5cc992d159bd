# Business associate agreements (catalogue AZ-1): 164.308(a)(4)(ii)(B-C) access authorization,
# 164.308(b)(1) and 164.314(a) business associate contracts.
#
# Every organization that runs a node holds a full replica of the chain and so receives whatever
# the chain carries; it may only do so under a signed BAA. Exception: organizations with role
# `regulator`. A health oversight agency receives information under 164.512(d) as an oversight
# authority, not as a business associate, so no BAA is required of it (its access is still
# limited by its nodes' role, normally `observer`).
package hcops.hipaa.baa

import rego.v1

import data.hcops.hipaa.lib

needs_baa(o) if {
	o.nodeCount > 0
	o.role != "regulator"
}

baa_signed(o) if object.get(o, ["baa", "signed"], false) == true

# METADATA
# title: Node-running organization without a signed BAA
# description: >-
#   An organization other than a regulator runs nodes but has no signed business associate
#   agreement (baa.signed is not true). Deny.
# scope: rule
# custom:
#   id: HC-AZ1-BAA-MISSING
#   control: AZ-1
#   hipaa:
#     - 164.308(a)(4)(ii)(B)
#     - 164.308(b)(1)
#     - 164.314(a)
#   severity: high
#   remediation: >-
#     Sign the consortium BAA and record it as baa: {signed: true, signedOn: YYYY-MM-DD}, or
#     remove the organization's nodes.
deny contains f if {
	some o in input.organizations
	needs_baa(o)
	not baa_signed(o)
	f := {
		"id": "HC-AZ1-BAA-MISSING",
		"msg": sprintf("organization %s (%s) runs %d node(s) without a signed BAA", [o.name, o.role, o.nodeCount]),
		"resource": lib.org_resource(o),
		"path": sprintf("%s.baa", [o.path]),
	}
}

# METADATA
# title: BAA signing date missing
# description: >-
#   The BAA is marked signed but baa.signedOn is empty, so the agreement cannot be traced in an
#   audit. Warn.
# scope: rule
# custom:
#   id: HC-AZ1-BAA-UNDATED
#   control: AZ-1
#   hipaa:
#     - 164.308(b)(1)
#     - 164.316(b)(1)
#   severity: low
#   remediation: Record the signing date in baa.signedOn.
warn contains f if {
	some o in input.organizations
	needs_baa(o)
	baa_signed(o)
	not has_signed_on(o)
	f := {
		"id": "HC-AZ1-BAA-UNDATED",
		"msg": sprintf("organization %s has a signed BAA without a signing date", [o.name]),
		"resource": lib.org_resource(o),
		"path": sprintf("%s.baa.signedOn", [o.path]),
	}
}

has_signed_on(o) if {
	d := object.get(o, ["baa", "signedOn"], "")
	is_string(d)
	trim_space(d) != ""
}

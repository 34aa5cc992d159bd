# Runtime check of HIPAA 164.308(a)(4)(ii)(B-C) access authorization and modification (catalogue
# AZ-1): nothing runs under the consortium's labels that the spec does not declare.
package hcops.runtime.authorization

import rego.v1

import data.hcops.runtime.lib

# METADATA
# title: Undeclared container in the network
# description: >-
#   A container (or pod) carries this network's labels but the spec declares no such node: it was
#   started outside the reviewed change process and may hold or serve consortium data.
# scope: rule
# custom:
#   id: HC-RT-AZ1-UNDECLARED
#   control: AZ-1
#   hipaa:
#     - 164.308(a)(4)(ii)(B)
#     - 164.308(a)(4)(ii)(C)
#   severity: high
#   remediation: >-
#     Find out who started it; remove it (`hcops apply` removes labelled nodes that the spec no longer
#     declares) or declare it in the spec through the reviewed change process.
deny contains f if {
	lib.is_facts
	some c in lib.undeclared
	f := {
		"id": "HC-RT-AZ1-UNDECLARED",
		"msg": sprintf("%s %s (state %v) carries network %s's labels but is not declared in the spec", [c.kind, c.name, c.state, lib.network]),
		"resource": lib.container_resource(c),
		"path": "spec.organizations",
	}
}

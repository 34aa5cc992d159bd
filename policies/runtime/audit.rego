# Runtime checks of HIPAA 164.312(b) audit controls (catalogue AU-1) and 164.308(a)(1)(ii)(D)
# information system activity review (catalogue AR-1) on the audit itself.
package hcops.runtime.audit

import rego.v1

import data.hcops.runtime.lib

# METADATA
# title: Audit sweep overdue
# description: >-
#   The previous audit sweep is older than two audit intervals: the network went unreviewed for a
#   while (the continuous audit was not running).
# scope: rule
# custom:
#   id: HC-RT-AR1-SWEEP-OVERDUE
#   control: AR-1
#   hipaa:
#     - 164.308(a)(1)(ii)(D)
#     - 164.312(b)
#   severity: medium
#   remediation: Keep `hcops audit --watch` running (as a service) for this network.
deny contains f if {
	lib.is_facts
	age := lib.audit.previousSweepAgeNs
	is_number(age)
	age > lib.audit.overdueAfterNs
	f := {
		"id": "HC-RT-AR1-SWEEP-OVERDUE",
		"msg": sprintf("the previous sweep %s ran %s ago, more than 2 audit intervals (%s)", [lib.audit.previousSweepId, lib.ns_text(age), lib.ns_text(lib.audit.overdueAfterNs)]),
		"resource": lib.network_resource,
		"path": "spec.audit.interval",
	}
}

# METADATA
# title: Audit log broken
# description: >-
#   The audit log's hash chain does not verify: a record was edited, inserted or deleted, so the
#   evidence can no longer be relied on.
# scope: rule
# custom:
#   id: HC-RT-AU1-LOG-BROKEN
#   control: AU-1
#   hipaa:
#     - 164.312(b)
#   severity: high
#   remediation: >-
#     Preserve the file for investigation (`hcops audit verify` names the first bad record), restore
#     the log from a backup, and compare it with the anchored head hashes on the chain.
deny contains f if {
	lib.is_facts
	lib.audit.logIntact == false
	f := {
		"id": "HC-RT-AU1-LOG-BROKEN",
		"msg": sprintf("the audit log does not verify: %v", [lib.audit.logBreak]),
		"resource": lib.network_resource,
		"path": "spec.audit",
	}
}

# HIPAA Security Rule 164.312(b) audit controls (catalogue AU-1) and 164.308(a)(1)(ii)(D)
# information system activity review (catalogue AR-1).
package hcops.hipaa.audit

import rego.v1

import data.hcops.hipaa.lib

# Six years, the documentation retention period of 164.316(b)(2)(i).
min_retention_days := 2190

# The longest accepted audit interval: one day.
max_interval_ns := 86400000000000

audit := object.get(input.spec, "audit", {})

# METADATA
# title: Audit disabled
# description: >-
#   spec.audit.enabled is not true: no audit sweep records who ran which node with which image and
#   configuration. Deny.
# scope: rule
# custom:
#   id: HC-AU1-AUDIT-DISABLED
#   control: AU-1
#   hipaa:
#     - 164.312(b)
#   severity: high
#   remediation: Set spec.audit.enabled to true.
deny contains f if {
	not object.get(audit, "enabled", false) == true
	f := {
		"id": "HC-AU1-AUDIT-DISABLED",
		"msg": "auditing is disabled (spec.audit.enabled is not true)",
		"resource": lib.network_resource,
		"path": "spec.audit.enabled",
	}
}

# METADATA
# title: Audit retention shorter than six years
# description: >-
#   spec.audit.retentionDays is missing or below 2190 days. Audit records are documentation that
#   164.316(b)(2)(i) requires to be kept six years. Deny.
# scope: rule
# custom:
#   id: HC-AU1-RETENTION-SHORT
#   control: AU-1
#   hipaa:
#     - 164.312(b)
#     - 164.316(b)(2)(i)
#   severity: high
#   remediation: Set spec.audit.retentionDays to 2190 or more.
deny contains f if {
	days := object.get(audit, "retentionDays", null)
	not at_least(days, min_retention_days)
	f := {
		"id": "HC-AU1-RETENTION-SHORT",
		"msg": sprintf("audit retention is %v days, below the required %d", [days, min_retention_days]),
		"resource": lib.network_resource,
		"path": "spec.audit.retentionDays",
	}
}

at_least(x, limit) if {
	is_number(x)
	x >= limit
}

# METADATA
# title: Audit log not anchored to the chain
# description: >-
#   spec.audit.anchorToChain is not true, so the audit log's hash chain is not anchored on the
#   consortium chain and a host administrator could rewrite it unnoticed. Warn: the local hash
#   chain still exists.
# scope: rule
# custom:
#   id: HC-AU1-ANCHOR-OFF
#   control: AU-1
#   hipaa:
#     - 164.312(b)
#     - 164.312(c)(1)
#   severity: low
#   remediation: Set spec.audit.anchorToChain to true.
warn contains f if {
	not object.get(audit, "anchorToChain", false) == true
	f := {
		"id": "HC-AU1-ANCHOR-OFF",
		"msg": "audit records are not anchored to the chain (spec.audit.anchorToChain is not true)",
		"resource": lib.network_resource,
		"path": "spec.audit.anchorToChain",
	}
}

# METADATA
# title: Audit interval missing
# description: >-
#   spec.audit.interval is missing, empty, zero or not a duration (such as 30s, 5m, 1h), so no
#   scheduled activity review takes place. Deny.
# scope: rule
# custom:
#   id: HC-AR1-AUDIT-INTERVAL-MISSING
#   control: AR-1
#   hipaa:
#     - 164.308(a)(1)(ii)(D)
#   severity: medium
#   remediation: Set spec.audit.interval to a duration such as 30s or 5m.
deny contains f if {
	interval := object.get(audit, "interval", null)
	not valid_duration(interval)
	f := {
		"id": "HC-AR1-AUDIT-INTERVAL-MISSING",
		"msg": sprintf("audit interval %v is missing or not a positive duration", [interval]),
		"resource": lib.network_resource,
		"path": "spec.audit.interval",
	}
}

# Go duration syntax without the micro sign: 30s, 1h30m, 1.5h, 500ms.
duration_pattern := `^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`

valid_duration(d) if {
	is_string(d)
	regex.match(duration_pattern, d)
	time.parse_duration_ns(d) > 0
}

# METADATA
# title: Audit interval longer than a day
# description: >-
#   spec.audit.interval is longer than 24h: drift and unexpected containers would go unnoticed for
#   more than a day between sweeps. Warn.
# scope: rule
# custom:
#   id: HC-AR1-AUDIT-INTERVAL-LONG
#   control: AR-1
#   hipaa:
#     - 164.308(a)(1)(ii)(D)
#   severity: low
#   remediation: Set spec.audit.interval to 24h or less.
warn contains f if {
	interval := object.get(audit, "interval", null)
	valid_duration(interval)
	time.parse_duration_ns(interval) > max_interval_ns
	f := {
		"id": "HC-AR1-AUDIT-INTERVAL-LONG",
		"msg": sprintf("audit interval %s is longer than 24h", [interval]),
		"resource": lib.network_resource,
		"path": "spec.audit.interval",
	}
}

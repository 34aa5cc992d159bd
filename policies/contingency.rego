# HIPAA Security Rule 164.308(a)(7): contingency plan (catalogue CP-1): data backup (R), disaster
# recovery (R) and testing (A).
#
# Besides backups, availability of the chain itself is a contingency control: CometBFT tolerates
# f faulty validators out of 3f + 1, so the validator set must survive the loss of one validator
# and of one organization.
package hcops.hipaa.contingency

import rego.v1

import data.hcops.hipaa.lib

min_retention_days := 2190

min_validators := 4

min_validator_orgs := 3

backup := object.get(input.spec, "backup", {})

# METADATA
# title: Backups disabled
# description: spec.backup.enabled is not true, so chain data cannot be restored after a loss. Deny.
# scope: rule
# custom:
#   id: HC-CP1-BACKUP-DISABLED
#   control: CP-1
#   hipaa:
#     - 164.308(a)(7)(ii)(A)
#   severity: high
#   remediation: Set spec.backup.enabled to true with a schedule and a retention.
deny contains f if {
	not object.get(backup, "enabled", false) == true
	f := {
		"id": "HC-CP1-BACKUP-DISABLED",
		"msg": "backups are disabled (spec.backup.enabled is not true)",
		"resource": lib.network_resource,
		"path": "spec.backup.enabled",
	}
}

# METADATA
# title: Backup schedule missing
# description: >-
#   spec.backup.schedule is missing or not a cron expression (five or six fields, or a macro such
#   as @daily), so backups never run. Deny.
# scope: rule
# custom:
#   id: HC-CP1-BACKUP-SCHEDULE-MISSING
#   control: CP-1
#   hipaa:
#     - 164.308(a)(7)(ii)(A)
#   severity: high
#   remediation: Set spec.backup.schedule, e.g. "0 2 * * *".
deny contains f if {
	schedule := object.get(backup, "schedule", null)
	not valid_schedule(schedule)
	f := {
		"id": "HC-CP1-BACKUP-SCHEDULE-MISSING",
		"msg": sprintf("backup schedule %v is missing or not a cron expression", [schedule]),
		"resource": lib.network_resource,
		"path": "spec.backup.schedule",
	}
}

cron_macros := {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}

valid_schedule(s) if {
	is_string(s)
	trim_space(s) in cron_macros
}

valid_schedule(s) if {
	is_string(s)
	fields := regex.split(`\s+`, trim_space(s))
	count(fields) in {5, 6}
	every field in fields {
		regex.match(`^[0-9A-Za-z*/,?#-]+$`, field)
	}
}

# METADATA
# title: Backup retention shorter than six years
# description: >-
#   spec.backup.retentionDays is missing or below 2190 days (the six-year retention of
#   164.316(b)(2)(i)). Deny.
# scope: rule
# custom:
#   id: HC-CP1-BACKUP-RETENTION-SHORT
#   control: CP-1
#   hipaa:
#     - 164.308(a)(7)(ii)(A)
#     - 164.316(b)(2)(i)
#   severity: medium
#   remediation: Set spec.backup.retentionDays to 2190 or more.
deny contains f if {
	days := object.get(backup, "retentionDays", null)
	not at_least(days, min_retention_days)
	f := {
		"id": "HC-CP1-BACKUP-RETENTION-SHORT",
		"msg": sprintf("backup retention is %v days, below the required %d", [days, min_retention_days]),
		"resource": lib.network_resource,
		"path": "spec.backup.retentionDays",
	}
}

at_least(x, limit) if {
	is_number(x)
	x >= limit
}

# METADATA
# title: Fewer than four validators
# description: >-
#   With fewer than 4 validators the chain cannot tolerate a single faulty or lost validator
#   (BFT needs n >= 3f + 1 with f >= 1). Deny.
# scope: rule
# custom:
#   id: HC-CP1-TOO-FEW-VALIDATORS
#   control: CP-1
#   hipaa:
#     - 164.308(a)(7)(ii)(B)
#   severity: high
#   remediation: Run at least 4 validators.
deny contains f if {
	input.chain.validators < min_validators
	f := {
		"id": "HC-CP1-TOO-FEW-VALIDATORS",
		"msg": sprintf("the chain has %d validator(s); at least %d are needed to tolerate one failure", [input.chain.validators, min_validators]),
		"resource": lib.network_resource,
		"path": "spec.organizations",
	}
}

# METADATA
# title: Validators in fewer than three organizations
# description: >-
#   The validators belong to fewer than 3 organizations, so one organization's outage (or
#   decision) can halt the chain. Deny.
# scope: rule
# custom:
#   id: HC-CP1-VALIDATOR-ORGS
#   control: CP-1
#   hipaa:
#     - 164.308(a)(7)(ii)(B)
#   severity: high
#   remediation: Spread the validators over at least 3 organizations.
deny contains f if {
	input.chain.organizationsWithValidators < min_validator_orgs
	f := {
		"id": "HC-CP1-VALIDATOR-ORGS",
		"msg": sprintf("validators belong to %d organization(s); at least %d are needed", [input.chain.organizationsWithValidators, min_validator_orgs]),
		"resource": lib.network_resource,
		"path": "spec.organizations",
	}
}

# METADATA
# title: One organization holds a third of the voting power
# description: >-
#   An organization holds at least 1/3 of the total voting power, so its outage alone halts the
#   chain (and it can block any commit). Deny.
# scope: rule
# custom:
#   id: HC-CP1-POWER-CONCENTRATION
#   control: CP-1
#   hipaa:
#     - 164.308(a)(7)(ii)(B)
#   severity: high
#   remediation: >-
#     Lower the organization's validator power or add validators in other organizations so that
#     every organization stays below 1/3 of the total.
deny contains f if {
	total := input.chain.totalPower
	total > 0
	some o in input.organizations
	o.votingPower > 0
	o.votingPower * 3 >= total
	f := {
		"id": "HC-CP1-POWER-CONCENTRATION",
		"msg": sprintf("organization %s holds %v of %v voting power (at least 1/3)", [o.name, o.votingPower, total]),
		"resource": lib.org_resource(o),
		"path": o.path,
	}
}

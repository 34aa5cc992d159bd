package hcops.hipaa.contingency_test

import rego.v1

import data.hcops.hipaa.contingency as policy
import data.hcops.hipaa.testdata as td

# The findings of this package for a whole input document (key by key, see testdata_test.rego).
denies(doc) := r if {
	r := policy.deny with input.metadata as doc.metadata
		with input.environment as doc.environment
		with input.spec as doc.spec
		with input.organizations as doc.organizations
		with input.nodes as doc.nodes
		with input.chain as doc.chain
		with input.manifests as doc.manifests
}

patched(ops) := json.patch(td.example, ops)

# --- HC-CP1-BACKUP-DISABLED

test_backup_disabled_fires if {
	some f in td.with_id(denies(td.violations["HC-CP1-BACKUP-DISABLED"]), "HC-CP1-BACKUP-DISABLED")
	f.resource == "network/regional-health-net"
	f.path == "spec.backup.enabled"
}

test_backup_disabled_passes if {
	not "HC-CP1-BACKUP-DISABLED" in td.ids(denies(td.example))
}

# --- HC-CP1-BACKUP-SCHEDULE-MISSING

test_backup_schedule_missing_fires if {
	some f in td.with_id(denies(td.violations["HC-CP1-BACKUP-SCHEDULE-MISSING"]), "HC-CP1-BACKUP-SCHEDULE-MISSING")
	f.path == "spec.backup.schedule"
}

test_backup_schedule_missing_fires_for_bad_schedules if {
	words := patched([{"op": "add", "path": "/spec/backup/schedule", "value": "every night"}])
	"HC-CP1-BACKUP-SCHEDULE-MISSING" in td.ids(denies(words))
	short := patched([{"op": "add", "path": "/spec/backup/schedule", "value": "0 2 *"}])
	"HC-CP1-BACKUP-SCHEDULE-MISSING" in td.ids(denies(short))
	missing := patched([{"op": "remove", "path": "/spec/backup/schedule"}])
	"HC-CP1-BACKUP-SCHEDULE-MISSING" in td.ids(denies(missing))
}

test_backup_schedule_missing_passes if {
	not "HC-CP1-BACKUP-SCHEDULE-MISSING" in td.ids(denies(td.example))
	daily := patched([{"op": "add", "path": "/spec/backup/schedule", "value": "@daily"}])
	not "HC-CP1-BACKUP-SCHEDULE-MISSING" in td.ids(denies(daily))
	steps := patched([{"op": "add", "path": "/spec/backup/schedule", "value": "30  */6 * * 1-5"}])
	not "HC-CP1-BACKUP-SCHEDULE-MISSING" in td.ids(denies(steps))
}

# --- HC-CP1-BACKUP-RETENTION-SHORT

test_backup_retention_short_fires if {
	some f in td.with_id(denies(td.violations["HC-CP1-BACKUP-RETENTION-SHORT"]), "HC-CP1-BACKUP-RETENTION-SHORT")
	f.path == "spec.backup.retentionDays"
	contains(f.msg, "30 days")
}

test_backup_retention_short_passes if {
	not "HC-CP1-BACKUP-RETENTION-SHORT" in td.ids(denies(td.example))
}

# --- HC-CP1-TOO-FEW-VALIDATORS

test_too_few_validators_fires if {
	some f in td.with_id(denies(td.violations["HC-CP1-TOO-FEW-VALIDATORS"]), "HC-CP1-TOO-FEW-VALIDATORS")
	f.resource == "network/regional-health-net"
	f.path == "spec.organizations"
	contains(f.msg, "3 validator(s)")
}

test_too_few_validators_passes if {
	not "HC-CP1-TOO-FEW-VALIDATORS" in td.ids(denies(td.example))
}

# --- HC-CP1-VALIDATOR-ORGS

test_validator_orgs_fires if {
	some f in td.with_id(denies(td.violations["HC-CP1-VALIDATOR-ORGS"]), "HC-CP1-VALIDATOR-ORGS")
	f.path == "spec.organizations"
	contains(f.msg, "2 organization(s)")
}

test_validator_orgs_passes if {
	not "HC-CP1-VALIDATOR-ORGS" in td.ids(denies(td.example))
	three := patched([{"op": "add", "path": "/chain/organizationsWithValidators", "value": 3}])
	not "HC-CP1-VALIDATOR-ORGS" in td.ids(denies(three))
}

# --- HC-CP1-POWER-CONCENTRATION

test_power_concentration_fires if {
	findings := td.with_id(denies(td.violations["HC-CP1-POWER-CONCENTRATION"]), "HC-CP1-POWER-CONCENTRATION")
	count(findings) == 1
	some f in findings
	f.resource == "org/st-mary-hospital"
	f.path == "spec.organizations[0]"
}

test_power_concentration_fires_at_exactly_one_third if {
	# three organizations with 10 each: every one holds exactly 1/3
	findings := td.with_id(denies(td.violations["HC-CP1-TOO-FEW-VALIDATORS"]), "HC-CP1-POWER-CONCENTRATION")
	count(findings) == 3
}

test_power_concentration_passes if {
	not "HC-CP1-POWER-CONCENTRATION" in td.ids(denies(td.example))

	# 13 of 40 is below 1/3
	below := patched([
		{"op": "add", "path": "/organizations/0/votingPower", "value": 13},
		{"op": "add", "path": "/chain/totalPower", "value": 40},
	])
	not "HC-CP1-POWER-CONCENTRATION" in td.ids(denies(below))
}

# Runtime checks of HIPAA 164.308(a)(7) contingency planning (catalogue CP-1): every node is up, the
# chain keeps committing, every validator signs, and the live validator set is the spec's.
package hcops.runtime.contingency

import rego.v1

import data.hcops.runtime.lib

# METADATA
# title: Node down
# description: >-
#   A declared node's container is missing or not running, or its RPC does not answer: the consortium
#   runs with less redundancy than it planned for.
# scope: rule
# custom:
#   id: HC-RT-CP1-NODE-DOWN
#   control: CP-1
#   hipaa:
#     - 164.308(a)(7)(ii)(B)
#   severity: high
#   remediation: Look at the node's logs, then run `hcops apply` to start or recreate it.
deny contains f if {
	lib.is_facts
	some n in lib.nodes
	n.up != true
	f := {
		"id": "HC-RT-CP1-NODE-DOWN",
		"msg": sprintf("%s is down (%s)", [n.name, down_reason(n)]),
		"resource": lib.node_resource(n),
		"path": n.path,
	}
}

down_reason(n) := "no container" if n.present != true

down_reason(n) := sprintf("container %s", [n.state]) if {
	n.present == true
	n.running != true
}

down_reason(n) := sprintf("RPC does not answer: %v", [n.rpc.error]) if {
	n.present == true
	n.running == true
}

# METADATA
# title: Chain stalled
# description: >-
#   No block was committed within three block intervals and the timeouts of one failed consensus round
#   (a round whose proposer is down), or no node answers at all: the ledger is not available for its
#   users.
# scope: rule
# custom:
#   id: HC-RT-CP1-CHAIN-STALLED
#   control: CP-1
#   hipaa:
#     - 164.308(a)(7)(ii)(B)
#   severity: high
#   remediation: >-
#     Check that more than two thirds of the voting power is up and connected (`hcops status`), then
#     bring the missing validators back with `hcops apply`.
deny contains f if {
	lib.is_facts
	some msg in stall_reasons
	f := {
		"id": "HC-RT-CP1-CHAIN-STALLED",
		"msg": msg,
		"resource": lib.network_resource,
		"path": "spec.chain.blockInterval",
	}
}

stall_reasons contains "no node answers RPC: the chain's progress cannot be seen" if {
	count(lib.nodes) > 0
	object.get(lib.chain, "reachableNodes", 0) == 0
}

stall_reasons contains msg if {
	age := lib.chain.latestBlockAgeNs
	is_number(age)
	age > lib.chain.blockAgeLimitNs
	msg := sprintf("the newest block is %s old, more than 3 block intervals, one failed round and the allowance for block time lag (%s)", [lib.ns_text(age), lib.ns_text(lib.chain.blockAgeLimitNs)])
}

stall_reasons contains msg if {
	lib.chain.heightAdvanced == false
	prev := lib.chain.previous
	prev.elapsedNs >= lib.chain.stallAfterNs
	msg := sprintf("height %v did not advance in %s since sweep %s", [lib.chain.height, lib.ns_text(prev.elapsedNs), prev.sweepId])
}

# METADATA
# title: Validator missing from recent commits
# description: >-
#   A validator of the spec signed none of the recent commits the nodes report: it is down, cut off
#   or not signing, and the chain's fault tolerance is reduced.
# scope: rule
# custom:
#   id: HC-RT-CP1-VALIDATOR-NOT-SIGNING
#   control: CP-1
#   hipaa:
#     - 164.308(a)(7)(ii)(B)
#   severity: medium
#   remediation: Look at the validator's logs and peers; restart it with `hcops apply`.
deny contains f if {
	lib.is_facts
	commits := object.get(lib.chain, "recentCommits", [])
	count(commits) > 0
	signers := {upper(s) | some c in commits; some s in c.signers}
	some v in object.get(lib.spec, "validators", [])
	not upper(v.address) in signers
	f := {
		"id": "HC-RT-CP1-VALIDATOR-NOT-SIGNING",
		"msg": sprintf("validator %s (%s) signed none of the last %d commit(s) seen", [v.name, v.address, count(commits)]),
		"resource": sprintf("node/%s", [v.name]),
		"path": "spec.organizations",
	}
}

# METADATA
# title: Validator set differs from the spec
# description: >-
#   The validator set the chain reports (addresses and voting powers) is not the one the spec
#   declares: voting power changed outside the reviewed process.
# scope: rule
# custom:
#   id: HC-RT-CP1-VALIDATOR-SET
#   control: CP-1
#   hipaa:
#     - 164.308(a)(7)(ii)(B)
#   severity: high
#   remediation: >-
#     Find the transaction that changed the set; restore it, or change the spec through review so that
#     spec and chain agree.
deny contains f if {
	lib.is_facts
	is_string(lib.chain.validatorSetFrom)
	some v in lib.chain.validatorSet
	not [upper(v.address), v.power] in lib.spec_validators
	f := {
		"id": "HC-RT-CP1-VALIDATOR-SET",
		"msg": sprintf("the chain has validator %s with power %v, which the spec does not declare", [v.address, v.power]),
		"resource": lib.network_resource,
		"path": "spec.organizations",
	}
}

# METADATA
# title: Validator set differs from the spec
# description: >-
#   The validator set the chain reports (addresses and voting powers) is not the one the spec
#   declares: voting power changed outside the reviewed process.
# scope: rule
# custom:
#   id: HC-RT-CP1-VALIDATOR-SET
#   control: CP-1
#   hipaa:
#     - 164.308(a)(7)(ii)(B)
#   severity: high
#   remediation: >-
#     Find the transaction that changed the set; restore it, or change the spec through review so that
#     spec and chain agree.
deny contains f if {
	lib.is_facts
	is_string(lib.chain.validatorSetFrom)
	some v in lib.spec.validators
	not [upper(v.address), v.power] in lib.live_validators
	f := {
		"id": "HC-RT-CP1-VALIDATOR-SET",
		"msg": sprintf("the spec declares validator %s (%s) with power %v, which the chain does not have", [v.name, v.address, v.power]),
		"resource": lib.network_resource,
		"path": "spec.organizations",
	}
}

# ---------------------------------------------------------------------------------------------- backups
# The `backup` section of the fact document is read from the audit log's backup and drill records
# (hcops.backup.evidence.backup_facts). A network is judged only after hcops has recorded it for longer
# than the allowed age (recordingForNs): a new network is not overdue before its first scheduled run.

backup := object.get(input, "backup", {})

# METADATA
# title: Backup overdue
# description: >-
#   No successful backup was recorded within twice the interval of spec.backup.schedule: the data backup
#   plan exists on paper only, and exact retrievable copies of the chain are missing or stale.
# scope: rule
# custom:
#   id: HC-RT-CP1-BACKUP-OVERDUE
#   control: CP-1
#   hipaa:
#     - 164.308(a)(7)(ii)(A)
#   severity: high
#   remediation: >-
#     Run `hcops backup -f SPEC` now, and keep `hcops audit --watch` running: it takes the scheduled
#     backups. `hcops backup list` and the audit log show the failed runs and why.
deny contains f if {
	lib.is_facts
	backup.enabled == true
	is_number(backup.overdueAfterNs)
	some msg in overdue_reasons
	f := {
		"id": "HC-RT-CP1-BACKUP-OVERDUE",
		"msg": msg,
		"resource": lib.network_resource,
		"path": "spec.backup.schedule",
	}
}

overdue_reasons contains msg if {
	last := backup.lastSuccess
	last != null
	last.ageNs > backup.overdueAfterNs
	msg := sprintf("the last successful backup (%s, of %s) is %s old, more than twice the schedule's interval (%s)", [last.id, last.node, lib.ns_text(last.ageNs), lib.ns_text(backup.overdueAfterNs)])
}

overdue_reasons contains msg if {
	backup.lastSuccess == null
	backup.recordingForNs > backup.overdueAfterNs
	msg := sprintf("no successful backup is recorded in %s, more than twice the schedule's interval (%s)", [lib.ns_text(backup.recordingForNs), lib.ns_text(backup.overdueAfterNs)])
}

# METADATA
# title: Backup archive does not verify
# description: >-
#   A retained backup archive is missing, or its SHA-256 is no longer the one recorded in the audit log
#   when it was written: that copy is not an exact retrievable copy any more.
# scope: rule
# custom:
#   id: HC-RT-CP1-BACKUP-DIGEST
#   control: CP-1
#   hipaa:
#     - 164.308(a)(7)(ii)(A)
#     - 164.308(a)(7)(ii)(B)
#   severity: high
#   remediation: >-
#     Find out what changed or removed the archive (storage fault, tampering), take a new backup with
#     `hcops backup`, and check the others with `hcops backup list`.
deny contains f if {
	lib.is_facts
	some a in object.get(backup, "archives", [])
	a.verified == false
	f := {
		"id": "HC-RT-CP1-BACKUP-DIGEST",
		"msg": sprintf("backup %s (of %s) does not verify: %s", [a.id, a.node, a.problem]),
		"resource": sprintf("backup/%s", [a.id]),
		"path": "spec.backup",
	}
}

drill_problems contains msg if {
	backup.enabled == true
	d := backup.drill
	d.lastSuccess == null
	backup.recordingForNs > d.maxAgeNs
	msg := sprintf("no successful restore drill is recorded in %s (at most 90 days apart)", [lib.ns_text(backup.recordingForNs)])
}

drill_problems contains msg if {
	backup.enabled == true
	last := backup.drill.lastSuccess
	last != null
	last.ageNs > backup.drill.maxAgeNs
	msg := sprintf("the last successful restore drill (of backup %s) is %s old, more than 90 days", [last.backupId, lib.ns_text(last.ageNs)])
}

# METADATA
# title: Restore drill overdue
# description: >-
#   No restore was tested in the last 90 days: the contingency plan's restores are untested
#   (a warning outside the production tier).
# scope: rule
# custom:
#   id: HC-RT-CP1-DRILL-OVERDUE
#   control: CP-1
#   hipaa:
#     - 164.308(a)(7)(ii)(B)
#     - 164.308(a)(7)(ii)(D)
#   severity: medium
#   remediation: Run `hcops drill restore -f SPEC`; it is recorded in the audit log as evidence.
warn contains f if {
	lib.is_facts
	object.get(input, "tier", null) != "production"
	some msg in drill_problems
	f := {"id": "HC-RT-CP1-DRILL-OVERDUE", "msg": msg, "resource": lib.network_resource, "path": "spec.backup"}
}

# METADATA
# title: Restore drill overdue
# description: >-
#   No restore was tested in the last 90 days: in the production tier, untested restores fail the audit.
# scope: rule
# custom:
#   id: HC-RT-CP1-DRILL-OVERDUE
#   control: CP-1
#   hipaa:
#     - 164.308(a)(7)(ii)(B)
#     - 164.308(a)(7)(ii)(D)
#   severity: medium
#   remediation: Run `hcops drill restore -f SPEC`; it is recorded in the audit log as evidence.
deny contains f if {
	lib.is_facts
	input.tier == "production"
	some msg in drill_problems
	f := {"id": "HC-RT-CP1-DRILL-OVERDUE", "msg": msg, "resource": lib.network_resource, "path": "spec.backup"}
}

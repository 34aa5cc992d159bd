package hcops.runtime.contingency_test

import rego.v1

import data.hcops.runtime.contingency as policy
import data.hcops.runtime.testdata as td

denies(doc) := r if {
	r := policy.deny with input.kind as doc.kind
		with input.network as doc.network
		with input.spec as doc.spec
		with input.nodes as doc.nodes
		with input.undeclared as doc.undeclared
		with input.chain as doc.chain
		with input.audit as doc.audit
}

test_clean_network_passes if {
	count(denies(td.clean)) == 0
}

test_stopped_node_fires if {
	doc := td.patched([
		{"op": "replace", "path": "/nodes/1/state", "value": "exited"},
		{"op": "replace", "path": "/nodes/1/running", "value": false},
		{"op": "replace", "path": "/nodes/1/up", "value": false},
	])
	some f in td.with_id(denies(doc), "HC-RT-CP1-NODE-DOWN")
	f.resource == "node/b-val-0"
	contains(f.msg, "container exited")
}

test_absent_node_fires if {
	doc := td.patched([
		{"op": "replace", "path": "/nodes/0/present", "value": false},
		{"op": "replace", "path": "/nodes/0/up", "value": false},
	])
	some f in td.with_id(denies(doc), "HC-RT-CP1-NODE-DOWN")
	contains(f.msg, "no container")
}

test_silent_rpc_fires if {
	doc := td.patched([
		{"op": "replace", "path": "/nodes/0/up", "value": false},
		{"op": "replace", "path": "/nodes/0/rpc/error", "value": "connection refused"},
	])
	some f in td.with_id(denies(doc), "HC-RT-CP1-NODE-DOWN")
	contains(f.msg, "connection refused")
}

test_old_block_means_stalled if {
	doc := td.patched([{"op": "replace", "path": "/chain/latestBlockAgeNs", "value": 12000000000}])
	some f in td.with_id(denies(doc), "HC-RT-CP1-CHAIN-STALLED")
	f.resource == "network/small-net"
	contains(f.msg, "12s old")
}

# A round lost to a proposer that is down (about 5 s at CometBFT's default timeouts) is not a stall.
test_a_block_late_by_one_failed_round_passes if {
	doc := td.patched([{"op": "replace", "path": "/chain/latestBlockAgeNs", "value": 9000000000}])
	not "HC-RT-CP1-CHAIN-STALLED" in td.ids(denies(doc))
}

test_height_not_advanced_means_stalled if {
	doc := td.patched([
		{"op": "replace", "path": "/chain/heightAdvanced", "value": false},
		{"op": "replace", "path": "/chain/previous/height", "value": 120},
	])
	some f in td.with_id(denies(doc), "HC-RT-CP1-CHAIN-STALLED")
	contains(f.msg, "did not advance")
}

test_height_not_advanced_in_a_short_time_passes if {
	doc := td.patched([
		{"op": "replace", "path": "/chain/heightAdvanced", "value": false},
		{"op": "replace", "path": "/chain/previous/elapsedNs", "value": 1000000000},
	])
	count(denies(doc)) == 0
}

test_no_reachable_node_means_stalled if {
	doc := td.patched([{"op": "replace", "path": "/chain/reachableNodes", "value": 0}])
	"HC-RT-CP1-CHAIN-STALLED" in td.ids(denies(doc))
}

test_validator_not_signing_fires if {
	doc := td.patched([
		{"op": "replace", "path": "/chain/recentCommits/0/signers", "value": [td.addr_a]},
		{"op": "replace", "path": "/chain/recentCommits/1/signers", "value": [td.addr_a]},
		{"op": "replace", "path": "/chain/recentCommits/2/signers", "value": [td.addr_a]},
	])
	some f in td.with_id(denies(doc), "HC-RT-CP1-VALIDATOR-NOT-SIGNING")
	f.resource == "node/b-val-0"
}

test_validator_signing_in_one_recent_commit_passes if {
	doc := td.patched([
		{"op": "replace", "path": "/chain/recentCommits/0/signers", "value": [td.addr_a]},
		{"op": "replace", "path": "/chain/recentCommits/1/signers", "value": [td.addr_a]},
	])
	count(denies(doc)) == 0
}

test_validator_set_power_change_fires if {
	doc := td.patched([{"op": "replace", "path": "/chain/validatorSet/1/power", "value": 30}])
	found := td.with_id(denies(doc), "HC-RT-CP1-VALIDATOR-SET")
	count(found) == 2
}

test_validator_set_extra_member_fires if {
	doc := td.patched([{"op": "add", "path": "/chain/validatorSet/-", "value": {"address": "EEEE", "power": 10}}])
	some f in td.with_id(denies(doc), "HC-RT-CP1-VALIDATOR-SET")
	contains(f.msg, "EEEE")
}

test_validator_set_unknown_when_no_node_answers if {
	doc := td.patched([
		{"op": "replace", "path": "/chain/validatorSet", "value": []},
		{"op": "replace", "path": "/chain/validatorSetFrom", "value": null},
	])
	not "HC-RT-CP1-VALIDATOR-SET" in td.ids(denies(doc))
}

# ---------------------------------------------------------------------------------------------- backups
day := 86400000000000

backup_ok := {
	"enabled": true, "schedule": "0 2 * * *", "intervalNs": day, "overdueAfterNs": 2 * day, "retentionDays": 30,
	"recordingForNs": 200 * day,
	"lastSuccess": {"id": "20261125T020000Z-obs-0-ab12", "node": "obs-0", "time": "2026-11-25T02:00:00Z", "ageNs": day, "height": 100},
	"failures": 0, "lastFailure": null,
	"archives": [{
		"id": "20261125T020000Z-obs-0-ab12", "node": "obs-0", "time": "2026-11-25T02:00:00Z", "path": "/b/x.hcbk",
		"sha256": "ab", "verified": true, "problem": null,
	}],
	"drill": {"maxAgeNs": 90 * day, "lastSuccess": {"time": "2026-11-01T00:00:00Z", "ageNs": 24 * day, "backupId": "b1"}, "lastAttempt": null},
}

backup_denies(doc, b, tier) := r if {
	r := policy.deny with input.kind as doc.kind
		with input.network as doc.network
		with input.spec as doc.spec
		with input.nodes as doc.nodes
		with input.undeclared as doc.undeclared
		with input.chain as doc.chain
		with input.audit as doc.audit
		with input.backup as b
		with input.tier as tier
}

backup_warns(doc, b, tier) := r if {
	r := policy.warn with input.kind as doc.kind
		with input.network as doc.network
		with input.spec as doc.spec
		with input.nodes as doc.nodes
		with input.undeclared as doc.undeclared
		with input.chain as doc.chain
		with input.audit as doc.audit
		with input.backup as b
		with input.tier as tier
}

findings(b, tier) := {"deny": backup_denies(td.clean, b, tier), "warn": backup_warns(td.clean, b, tier)}

test_recent_backup_and_drill_pass if {
	r := findings(backup_ok, "production")
	count(r.deny) == 0
	count(r.warn) == 0
}

test_backup_older_than_two_intervals_denies if {
	b := json.patch(backup_ok, [{"op": "replace", "path": "/lastSuccess/ageNs", "value": 3 * day}])
	some f in td.with_id(findings(b, null).deny, "HC-RT-CP1-BACKUP-OVERDUE")
	contains(f.msg, "20261125T020000Z-obs-0-ab12")
	f.path == "spec.backup.schedule"
}

test_no_backup_ever_denies_once_past_two_intervals if {
	b := json.patch(backup_ok, [{"op": "replace", "path": "/lastSuccess", "value": null}])
	"HC-RT-CP1-BACKUP-OVERDUE" in td.ids(findings(b, null).deny)
}

test_new_network_without_backup_passes if {
	b := json.patch(backup_ok, [
		{"op": "replace", "path": "/lastSuccess", "value": null},
		{"op": "replace", "path": "/recordingForNs", "value": day},
	])
	not "HC-RT-CP1-BACKUP-OVERDUE" in td.ids(findings(b, null).deny)
}

test_disabled_backups_are_not_judged_at_runtime if {
	b := json.patch(backup_ok, [
		{"op": "replace", "path": "/enabled", "value": false},
		{"op": "replace", "path": "/lastSuccess/ageNs", "value": 30 * day},
	])
	not "HC-RT-CP1-BACKUP-OVERDUE" in td.ids(findings(b, null).deny)
}

test_archive_whose_digest_fails_denies if {
	b := json.patch(backup_ok, [
		{"op": "replace", "path": "/archives/0/verified", "value": false},
		{"op": "replace", "path": "/archives/0/problem", "value": "the archive is missing"},
	])
	some f in td.with_id(findings(b, null).deny, "HC-RT-CP1-BACKUP-DIGEST")
	f.resource == "backup/20261125T020000Z-obs-0-ab12"
	contains(f.msg, "missing")
}

test_unreadable_archive_is_not_a_digest_failure if {
	b := json.patch(backup_ok, [{"op": "replace", "path": "/archives/0/verified", "value": null}])
	not "HC-RT-CP1-BACKUP-DIGEST" in td.ids(findings(b, null).deny)
}

test_old_drill_warns_outside_production if {
	b := json.patch(backup_ok, [{"op": "replace", "path": "/drill/lastSuccess/ageNs", "value": 91 * day}])
	r := findings(b, "staging")
	"HC-RT-CP1-DRILL-OVERDUE" in td.ids(r.warn)
	not "HC-RT-CP1-DRILL-OVERDUE" in td.ids(r.deny)
}

test_old_drill_denies_in_production if {
	b := json.patch(backup_ok, [{"op": "replace", "path": "/drill/lastSuccess", "value": null}])
	r := findings(b, "production")
	some f in td.with_id(r.deny, "HC-RT-CP1-DRILL-OVERDUE")
	contains(f.msg, "no successful restore drill")
	not "HC-RT-CP1-DRILL-OVERDUE" in td.ids(r.warn)
}

test_facts_without_backup_section_pass if {
	count(denies(td.clean)) == 0
}

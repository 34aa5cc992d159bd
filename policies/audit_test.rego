package hcops.hipaa.audit_test

import rego.v1

import data.hcops.hipaa.audit as policy
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

warns(doc) := r if {
	r := policy.warn with input.metadata as doc.metadata
		with input.environment as doc.environment
		with input.spec as doc.spec
		with input.organizations as doc.organizations
		with input.nodes as doc.nodes
		with input.chain as doc.chain
		with input.manifests as doc.manifests
}

patched(ops) := json.patch(td.example, ops)

# --- HC-AU1-AUDIT-DISABLED

test_audit_disabled_fires if {
	some f in td.with_id(denies(td.violations["HC-AU1-AUDIT-DISABLED"]), "HC-AU1-AUDIT-DISABLED")
	f.resource == "network/regional-health-net"
	f.path == "spec.audit.enabled"
}

test_audit_disabled_fires_when_unset if {
	doc := patched([{"op": "remove", "path": "/spec/audit/enabled"}])
	"HC-AU1-AUDIT-DISABLED" in td.ids(denies(doc))
}

test_audit_disabled_passes if {
	not "HC-AU1-AUDIT-DISABLED" in td.ids(denies(td.example))
}

# --- HC-AU1-RETENTION-SHORT

test_retention_short_fires if {
	some f in td.with_id(denies(td.violations["HC-AU1-RETENTION-SHORT"]), "HC-AU1-RETENTION-SHORT")
	f.path == "spec.audit.retentionDays"
	contains(f.msg, "365")
}

test_retention_short_fires_when_missing_or_not_a_number if {
	missing := patched([{"op": "remove", "path": "/spec/audit/retentionDays"}])
	"HC-AU1-RETENTION-SHORT" in td.ids(denies(missing))
	text := patched([{"op": "add", "path": "/spec/audit/retentionDays", "value": "2190"}])
	"HC-AU1-RETENTION-SHORT" in td.ids(denies(text))
}

test_retention_short_passes if {
	not "HC-AU1-RETENTION-SHORT" in td.ids(denies(td.example))
	longer := patched([{"op": "add", "path": "/spec/audit/retentionDays", "value": 3650}])
	not "HC-AU1-RETENTION-SHORT" in td.ids(denies(longer))
}

# --- HC-AU1-ANCHOR-OFF

test_anchor_off_fires if {
	some f in td.with_id(warns(td.violations["HC-AU1-ANCHOR-OFF"]), "HC-AU1-ANCHOR-OFF")
	f.path == "spec.audit.anchorToChain"
}

test_anchor_off_passes if {
	not "HC-AU1-ANCHOR-OFF" in td.ids(warns(td.example))
}

# --- HC-AR1-AUDIT-INTERVAL-MISSING

test_audit_interval_missing_fires if {
	some f in td.with_id(denies(td.violations["HC-AR1-AUDIT-INTERVAL-MISSING"]), "HC-AR1-AUDIT-INTERVAL-MISSING")
	f.path == "spec.audit.interval"
}

test_audit_interval_missing_fires_for_bad_durations if {
	empty := patched([{"op": "add", "path": "/spec/audit/interval", "value": ""}])
	"HC-AR1-AUDIT-INTERVAL-MISSING" in td.ids(denies(empty))
	zero := patched([{"op": "add", "path": "/spec/audit/interval", "value": "0s"}])
	"HC-AR1-AUDIT-INTERVAL-MISSING" in td.ids(denies(zero))
	words := patched([{"op": "add", "path": "/spec/audit/interval", "value": "every minute"}])
	"HC-AR1-AUDIT-INTERVAL-MISSING" in td.ids(denies(words))
	number := patched([{"op": "add", "path": "/spec/audit/interval", "value": 30}])
	"HC-AR1-AUDIT-INTERVAL-MISSING" in td.ids(denies(number))
}

test_audit_interval_missing_passes if {
	not "HC-AR1-AUDIT-INTERVAL-MISSING" in td.ids(denies(td.example))
	compound := patched([{"op": "add", "path": "/spec/audit/interval", "value": "1h30m"}])
	not "HC-AR1-AUDIT-INTERVAL-MISSING" in td.ids(denies(compound))
}

# --- HC-AR1-AUDIT-INTERVAL-LONG

test_audit_interval_long_fires if {
	some f in td.with_id(warns(td.violations["HC-AR1-AUDIT-INTERVAL-LONG"]), "HC-AR1-AUDIT-INTERVAL-LONG")
	f.path == "spec.audit.interval"
}

test_audit_interval_long_passes if {
	not "HC-AR1-AUDIT-INTERVAL-LONG" in td.ids(warns(td.example))
	one_day := patched([{"op": "add", "path": "/spec/audit/interval", "value": "24h"}])
	not "HC-AR1-AUDIT-INTERVAL-LONG" in td.ids(warns(one_day))
}

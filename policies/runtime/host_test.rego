package hcops.runtime.host_test

import rego.v1

import data.hcops.runtime.host as policy
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

sha := "7ea7363e5ad407247c35cc9e6fe1b84cc3d477d48e4261d6ac8e0e74090b45ef"

# A host as the ansible provider reports it after `hcops apply` (written out literally: see testdata_test).
host := {
	"unit": {
		"name": "cometbft-small-net.service", "installed": true, "activeState": "active",
		"subState": "running", "enabled": true, "restarts": 0, "dropIns": [], "restartPending": false,
	},
	"hardening": {
		"user": "cometbft", "noNewPrivileges": true, "protectSystem": "strict", "protectHome": "yes",
		"privateTmp": true, "privateDevices": true, "capabilityBoundingSet": [], "ambientCapabilities": [],
		"readWritePaths": ["/var/lib/cometbft/data"],
	},
	"dataDir": "/var/lib/cometbft/data",
	"binary": {
		"path": "/usr/local/lib/hcops/small-net/cometbft", "present": true, "sha256": sha,
		"version": "0.38.17", "expectedVersion": "0.38.17", "expectedSha256": sha,
	},
	"user": {"name": "cometbft", "exists": true, "uid": 997, "gid": 997},
	"listening": [{"address": "0.0.0.0", "port": 26656}, {"address": "127.0.0.1", "port": 26657}],
	"firewall": {
		"enabled": true, "table": "inet hcops_small_net", "present": true, "unitActive": true, "unitEnabled": true,
		"rpc": {"reach": "loopback", "allowed": ["loopback"]},
		"p2p": {"reach": "listed", "allowed": ["10.0.0.11", "10.0.0.12", "loopback"]},
		"metrics": {"reach": "loopback", "allowed": ["loopback"]},
	},
}

# The clean two-validator network, both nodes on hosts.
on_hosts := td.patched([
	{"op": "add", "path": "/nodes/0/host", "value": host},
	{"op": "add", "path": "/nodes/1/host", "value": host},
])

patched(ops) := json.patch(on_hosts, ops)

test_clean_hosts_pass if {
	count(denies(on_hosts)) == 0
}

test_nodes_without_host_facts_are_not_judged if {
	count(denies(td.clean)) == 0
}

test_absent_node_is_not_judged if {
	doc := patched([
		{"op": "replace", "path": "/nodes/0/present", "value": false},
		{"op": "replace", "path": "/nodes/0/host/firewall/present", "value": false},
	])
	count(denies(doc)) == 0
}

test_firewall_not_loaded_fires if {
	doc := patched([{"op": "replace", "path": "/nodes/1/host/firewall/present", "value": false}])
	some f in td.with_id(denies(doc), "HC-RT-AC1-HOST-FIREWALL")
	f.resource == "node/b-val-0"
	f.msg == "b-val-0: the firewall table inet hcops_small_net is not loaded"
}

test_firewall_not_loaded_at_boot_fires if {
	doc := patched([{"op": "replace", "path": "/nodes/0/host/firewall/unitEnabled", "value": false}])
	some f in td.with_id(denies(doc), "HC-RT-AC1-HOST-FIREWALL")
	contains(f.msg, "not loaded at boot")
}

test_firewall_disabled_by_the_spec_is_not_judged if {
	doc := patched([
		{"op": "replace", "path": "/nodes/0/host/firewall/enabled", "value": false},
		{"op": "replace", "path": "/nodes/0/host/firewall/present", "value": false},
	])
	count(denies(doc)) == 0
}

test_rpc_open_to_anyone_fires_for_internal_exposure if {
	doc := patched([{"op": "replace", "path": "/nodes/0/host/firewall/rpc/reach", "value": "any"}])
	some f in td.with_id(denies(doc), "HC-RT-AC1-HOST-FIREWALL")
	f.msg == "a-val-0: the firewall lets RPC be reached by any, beyond the spec's exposure 'internal'"
	f.path == "spec.network.rpc.exposure"
}

test_rpc_listed_fires_for_internal_but_passes_for_consortium if {
	listed := [{"op": "replace", "path": "/nodes/0/host/firewall/rpc/reach", "value": "listed"}]
	count(td.with_id(denies(patched(listed)), "HC-RT-AC1-HOST-FIREWALL")) == 1
	consortium := array.concat(listed, [{"op": "replace", "path": "/spec/rpc/exposure", "value": "consortium"}])
	count(denies(patched(consortium))) == 0
}

test_public_exposure_allows_any_rpc if {
	doc := patched([
		{"op": "replace", "path": "/nodes/0/host/firewall/rpc/reach", "value": "any"},
		{"op": "replace", "path": "/spec/rpc/exposure", "value": "public"},
	])
	count(denies(doc)) == 0
}

test_p2p_open_to_anyone_fires if {
	doc := patched([{"op": "replace", "path": "/nodes/0/host/firewall/p2p/reach", "value": "any"}])
	some f in td.with_id(denies(doc), "HC-RT-AC1-HOST-FIREWALL")
	f.msg == "a-val-0: the firewall lets any reach the p2p port"
}

test_unreadable_metrics_rules_fire if {
	doc := patched([{"op": "replace", "path": "/nodes/1/host/firewall/metrics/reach", "value": "unknown"}])
	some f in td.with_id(denies(doc), "HC-RT-AC1-HOST-FIREWALL")
	f.msg == "b-val-0: the firewall lets unknown reach the metrics port"
}

test_hardening_removed_fires_once_per_setting if {
	doc := patched([
		{"op": "replace", "path": "/nodes/0/host/hardening/noNewPrivileges", "value": false},
		{"op": "replace", "path": "/nodes/0/host/hardening/protectSystem", "value": "no"},
		{"op": "replace", "path": "/nodes/0/host/hardening/protectHome", "value": "no"},
		{"op": "replace", "path": "/nodes/0/host/hardening/privateTmp", "value": false},
		{"op": "replace", "path": "/nodes/0/host/hardening/capabilityBoundingSet", "value": ["cap_net_admin"]},
		{"op": "replace", "path": "/nodes/0/host/hardening/ambientCapabilities", "value": ["cap_net_admin"]},
		{"op": "replace", "path": "/nodes/0/host/hardening/readWritePaths", "value": ["/var/lib/cometbft/data", "/etc"]},
		{"op": "replace", "path": "/nodes/0/host/hardening/user", "value": "root"},
	])
	found := td.with_id(denies(doc), "HC-RT-IN1-HOST-UNIT-HARDENING")
	count(found) == 8
	every f in found {
		f.resource == "node/a-val-0"
		f.path == "spec.organizations[0].nodes[0]"
	}
	some f in found
	f.msg == "a-val-0: cometbft-small-net.service does not set NoNewPrivileges=yes"
}

test_protect_home_read_only_is_accepted if {
	doc := patched([{"op": "replace", "path": "/nodes/0/host/hardening/protectHome", "value": "read-only"}])
	count(denies(doc)) == 0
}

test_unit_without_hardening_facts_is_not_judged if {
	doc := patched([{"op": "replace", "path": "/nodes/0/host/hardening", "value": null}])
	count(denies(doc)) == 0
}

test_binary_missing_fires if {
	doc := patched([{"op": "replace", "path": "/nodes/0/host/binary/present", "value": false}])
	some f in td.with_id(denies(doc), "HC-RT-IN1-HOST-BINARY")
	f.msg == "a-val-0: /usr/local/lib/hcops/small-net/cometbft is missing"
}

test_binary_version_fires if {
	doc := patched([{"op": "replace", "path": "/nodes/1/host/binary/version", "value": "0.38.12"}])
	some f in td.with_id(denies(doc), "HC-RT-IN1-HOST-BINARY")
	f.msg == "b-val-0: /usr/local/lib/hcops/small-net/cometbft reports version 0.38.12, the spec says 0.38.17"
	f.path == "spec.chain.version"
}

test_binary_digest_fires if {
	doc := patched([{"op": "replace", "path": "/nodes/1/host/binary/sha256", "value": "0000"}])
	some f in td.with_id(denies(doc), "HC-RT-IN1-HOST-BINARY")
	contains(f.msg, "has content sha256:0000, hcops installed sha256:7ea7")
}

test_binary_digest_unknown_is_not_judged if {
	doc := patched([
		{"op": "replace", "path": "/nodes/1/host/binary/sha256", "value": "0000"},
		{"op": "replace", "path": "/nodes/1/host/binary/expectedSha256", "value": null},
	])
	count(denies(doc)) == 0
}

test_unit_not_enabled_fires if {
	doc := patched([{"op": "replace", "path": "/nodes/0/host/unit/enabled", "value": false}])
	some f in td.with_id(denies(doc), "HC-RT-CP1-HOST-NOT-ENABLED")
	f.msg == "a-val-0: cometbft-small-net.service is not enabled: the node will not start after a reboot"
}

test_restart_pending_fires if {
	doc := patched([{"op": "replace", "path": "/nodes/1/host/unit/restartPending", "value": true}])
	some f in td.with_id(denies(doc), "HC-RT-IN1-HOST-RESTART-PENDING")
	f.resource == "node/b-val-0"
}

# Shared fixtures of the runtime policy tests: `clean` is the fact document (README.md) of a healthy
# two-validator network, and `patched(ops)` is a variant of it made with json.patch.
#
# regopy 1.5.2 cannot evaluate `with input as <document>`, but it can replace the input key by key,
# so every test file replaces the top-level keys the runtime policies it tests read (the seven of the
# node and chain checks; phi_test and access_control_test also tier, phi and attestations).
# The file name ends in _test.rego so that the audit never loads it as policy.
package hcops.runtime.testdata

import rego.v1

ids(findings) := {f.id | some f in findings}

with_id(findings, id) := {f | some f in findings; f.id == id}

patched(ops) := json.patch(clean, ops)

image := "cometbft/cometbft:v0.38.17"

image_id := "sha256:1111111111111111111111111111111111111111111111111111111111111111"

key_files := [
	{"path": "config/node_key.json", "present": true, "mode": "0600", "uid": 10001, "gid": 10001, "error": null},
	{"path": "config/priv_validator_key.json", "present": true, "mode": "0600", "uid": 10001, "gid": 10001, "error": null},
	{"path": "data/priv_validator_state.json", "present": true, "mode": "0600", "uid": 10001, "gid": 10001, "error": null},
]

# regopy 1.5.2 keeps string function arguments quoted when a rule later formats them with sprintf, so
# the nodes are written out literally rather than made by a function.
node_a := {
	"name": "a-val-0", "org": "org-a", "role": "validator", "resource": "small-net-a-val-0",
	"path": "spec.organizations[0].nodes[0]",
	"expected": {"image": image, "nodeId": id_a, "validatorAddress": addr_a, "power": 10, "storageEncrypted": true},
	"present": true, "state": "running", "health": "healthy", "running": true, "up": true, "restartCount": 0,
	"image": {"reference": image, "id": image_id, "repoDigests": [], "previousId": image_id},
	"user": "10001:10001", "uid": 10001, "readOnlyRootFs": true, "privileged": false,
	"capDrop": ["ALL"], "capAdd": [], "noNewPrivileges": true,
	"mounts": [{"type": "volume", "name": "small-net-a-val-0-data", "destination": "/cometbft", "rw": true}],
	"keyFiles": key_files,
	"ports": [{"containerPort": 26657, "protocol": "tcp", "service": "rpc", "hostIp": "127.0.0.1", "hostPort": "26657"}],
	"resources": {"memoryBytes": 536870912, "nanoCpus": 500000000, "pidsLimit": 512},
	"labels": {"hcops.network": "small-net", "hcops.node": "a-val-0"},
	"rpc": {
		"reachable": true, "error": null, "nodeId": id_a, "validatorAddress": addr_a, "chainId": "small-1",
		"version": "0.38.17", "height": 120, "catchingUp": false, "latestBlockTime": "2026-11-25T12:00:00.1Z",
		"latestBlockAgeNs": 400000000, "peers": [id_b],
	},
	"storage": {
		"kind": "docker-volume", "volume": "small-net-a-val-0-data", "measured": true, "encrypted": false,
		"method": null, "detail": "ext4 on /dev/vda: no fscrypt policy on the folder, no dm-crypt device underneath",
	},
}

node_b := json.patch(node_a, [
	{"op": "replace", "path": "/name", "value": "b-val-0"},
	{"op": "replace", "path": "/org", "value": "org-b"},
	{"op": "replace", "path": "/resource", "value": "small-net-b-val-0"},
	{"op": "replace", "path": "/path", "value": "spec.organizations[1].nodes[0]"},
	{"op": "replace", "path": "/expected/nodeId", "value": id_b},
	{"op": "replace", "path": "/expected/validatorAddress", "value": addr_b},
	{"op": "replace", "path": "/mounts/0/name", "value": "small-net-b-val-0-data"},
	{"op": "replace", "path": "/ports/0/hostPort", "value": "26658"},
	{"op": "replace", "path": "/labels/hcops.node", "value": "b-val-0"},
	{"op": "replace", "path": "/rpc/nodeId", "value": id_b},
	{"op": "replace", "path": "/rpc/validatorAddress", "value": addr_b},
	{"op": "replace", "path": "/rpc/peers", "value": [id_a]},
])

id_a := "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

id_b := "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

addr_a := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

addr_b := "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

live_validators := [{"address": addr_a, "power": 10}, {"address": addr_b, "power": 10}]

clean := {
	"apiVersion": "hcops/v1alpha1", "kind": "AuditFacts", "network": "small-net", "environment": null,
	"tier": null, "provider": "docker",
	"sweep": {"id": "20261125T120000Z-0001", "time": "2026-11-25T12:00:00.5Z", "timeNs": 1795608000500000000},
	"spec": {
		"chainId": "small-1", "image": image, "imageDigest": null,
		"rpc": {"exposure": "internal", "tls": false},
		"data": {"phiOnChain": "none", "txIndex": "off"},
		"audit": {"enabled": true, "intervalNs": 30000000000, "retentionDays": 2190, "anchorToChain": false},
		"validators": [
			{"name": "a-val-0", "org": "org-a", "address": addr_a, "pubKey": "cHViYQ==", "power": 10},
			{"name": "b-val-0", "org": "org-b", "address": addr_b, "pubKey": "cHViYg==", "power": 10},
		],
		"nodeIds": {"a-val-0": id_a, "b-val-0": id_b},
	},
	"nodes": [
		node_a,
		node_b,
	],
	"undeclared": [],
	"chain": {
		"height": 120, "reachableNodes": 2, "blockIntervalNs": 1000000000, "stallAfterNs": 8000000000,
		"blockAgeLimitNs": 10000000000,
		"latestBlockAgeNs": 400000000,
		"previous": {"sweepId": "20261125T115930Z-0000", "height": 90, "elapsedNs": 30000000000},
		"heightAdvanced": true, "validatorSet": live_validators, "validatorSetFrom": "a-val-0",
		"recentCommits": [
			{"height": 117, "signers": [addr_a, addr_b]},
			{"height": 118, "signers": [addr_a, addr_b]},
			{"height": 119, "signers": [addr_a, addr_b]},
		],
	},
	"audit": {
		"intervalNs": 30000000000, "overdueAfterNs": 60000000000, "previousSweepId": "20261125T115930Z-0000",
		"previousSweepAgeNs": 30000000000, "logIntact": true, "logBreak": null,
	},
	"phi": {
		"policy": "none", "source": "a-val-0", "head": 120,
		"scanned": {"fromHeight": 91, "toHeight": 120, "blocks": 30, "txs": 2},
		"coveredFrom": 1, "coveredTo": 120, "fromStart": true, "caughtUp": true, "complete": true,
		"hits": [], "hitsTotal": 0, "newHits": 0, "error": null,
	},
	"attestations": {"active": [], "expired": []},
}

# A transaction hash (upper-case hex, as CometBFT shows it).
tx_a := "5C9A2B1E4F6D8A0B3C5E7F9A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6E7F8A9B0C"

# An undeclared container that publishes RPC on every interface.
rogue := {
	"kind": "container", "name": "small-net-rogue", "id": "rogue", "node": "rogue-0", "state": "running",
	"labels": {"hcops.network": "small-net"}, "image": image,
	"ports": [{"containerPort": 26657, "protocol": "tcp", "service": "rpc", "hostIp": "0.0.0.0", "hostPort": "36657"}],
}

# Shared fixtures for the policy unit tests, and the source of policies/testdata/*.json
# (written by policies/testdata/generate.py).
#
# `example` is the input document (docs/policy-input.md) that hcops builds for the
# regional-health-net example with the prod overlay (tier production), which pins the image by
# digest and names a break-glass contact for every organization: 4 validators in 4 organizations
# plus a regulator's observer, hardened docker services and a minimal set of Kubernetes objects. It
# passes the gate without any finding.
#
# `example_dev` is the same consortium in the dev environment (tier development), without the
# digest and with st-mary-hospital's break-glass contact only, as in the base spec. Its expected
# warnings: HC-IN1-IMAGE-NO-DIGEST, and HC-AC3-BREAK-GLASS-MISSING for the four other organizations.
#
# `violations[id]` is a variant of `example` that triggers the rule `id`, made with json.patch.
#
# The file name ends in _test.rego so the gate never loads it as policy.
package hcops.hipaa.testdata

import rego.v1

# ---------------------------------------------------------------------------------------------
# Helpers for tests. regopy 1.5.2 cannot evaluate `with input as <document>` (the query fails with
# "shape `rego-with` has no field `rego-ref`"), but it can replace the input key by key. Test files
# therefore override the seven top-level keys the policies read, always from a local variable or a
# function argument (a `with` value that is a rule reference fails in regopy as well).

ids(findings) := {f.id | some f in findings}

with_id(findings, id) := {f | some f in findings; f.id == id}

# ---------------------------------------------------------------------------------------------
# The example consortium.

name := "regional-health-net"

namespace := "regional-health-net"

digest := "sha256:54e4efce2a2612b63b51f757abe3d7c92eae9af1dcf4ad959b40d4d177f02e7e"

tagged_image := "hcops/cometbft:0.38.17"

image := sprintf("%s@%s", [tagged_image, digest])

# One row per node: organization index in spec.organizations and node ID (node key fingerprint).
node_table := [
	{"name": "stmary-val-0", "org": "st-mary-hospital", "org_index": 0, "orgRole": "provider", "role": "validator", "power": 10, "id": "fa1a4f4f37fd12d7314e707eabc0c3aa92130197"},
	{"name": "northside-val-0", "org": "northside-clinic", "org_index": 1, "orgRole": "provider", "role": "validator", "power": 10, "id": "1e3e00c89fbbdfa8da900485e875e251c119b757"},
	{"name": "bluecross-val-0", "org": "bluecross-payer", "org_index": 2, "orgRole": "payer", "role": "validator", "power": 10, "id": "7a5b7bd0307386d737cb4f1b8aa5633ec4b7de95"},
	{"name": "cityrx-val-0", "org": "cityrx-pharmacy", "org_index": 3, "orgRole": "pharmacy", "role": "validator", "power": 10, "id": "d90021892c2f3d88f3d1ea6c6504c4383cf5ffba"},
	{"name": "state-obs-0", "org": "state-health-dept", "org_index": 4, "orgRole": "regulator", "role": "observer", "power": 0, "id": "ea73077b7562439df9d8963a6b7d35757fbead7b"},
]

# Break-glass contacts of the prod overlay; the base spec (and so the dev environment) has the first only.
contacts := [
	{"breakGlass": "oncall@stmary.example"},
	{"breakGlass": "security@northside.example"},
	{"breakGlass": "soc@bluecross.example"},
	{"breakGlass": "it-oncall@cityrx.example"},
	{"breakGlass": "cio@health.state.example"},
]

spec := {
	"tier": "production",
	"chain": {
		"engine": "cometbft", "version": "0.38.17", "image": image,
		"chainId": "rhn-1", "blockInterval": "1s", "app": "kvstore",
	},
	"defaults": {
		"resources": {"cpu": "500m", "memory": "512Mi"},
		"storage": {"size": "10Gi", "encrypted": true},
	},
	"organizations": [
		{
			"name": "st-mary-hospital", "role": "provider", "coveredEntity": true,
			"baa": {"signed": true, "signedOn": "2026-01-15"},
			"contact": contacts[0],
			"nodes": [{"name": "stmary-val-0", "role": "validator", "power": 10}],
		},
		{
			"name": "northside-clinic", "role": "provider", "coveredEntity": true,
			"baa": {"signed": true, "signedOn": "2026-02-01"}, "contact": contacts[1],
			"nodes": [{"name": "northside-val-0", "role": "validator", "power": 10}],
		},
		{
			"name": "bluecross-payer", "role": "payer", "coveredEntity": true,
			"baa": {"signed": true, "signedOn": "2026-02-10"}, "contact": contacts[2],
			"nodes": [{"name": "bluecross-val-0", "role": "validator", "power": 10}],
		},
		{
			"name": "cityrx-pharmacy", "role": "pharmacy", "coveredEntity": true,
			"baa": {"signed": true, "signedOn": "2026-03-01"}, "contact": contacts[3],
			"nodes": [{"name": "cityrx-val-0", "role": "validator", "power": 10}],
		},
		{
			"name": "state-health-dept", "role": "regulator", "coveredEntity": false,
			"baa": null, "contact": contacts[4],
			"nodes": [{"name": "state-obs-0", "role": "observer", "power": 0}],
		},
	],
	"network": {
		"rpc": {"exposure": "internal", "tls": false, "cors": []},
		"p2p": {"pex": false, "addrBookStrict": true, "allowDuplicateIp": false},
	},
	"data": {"phiOnChain": "none", "txIndex": "off"},
	"audit": {"enabled": true, "interval": "30s", "retentionDays": 2190, "anchorToChain": true},
	"backup": {"enabled": true, "schedule": "0 2 * * *", "retentionDays": 2190},
	"provider": {
		"type": "docker", "docker": {},
		"kubernetes": {"namespace": namespace, "storageClass": "encrypted-ssd"},
	},
}

organizations := [org_entry(i, o) |
	some i
	o := spec.organizations[i]
]

org_entry(i, o) := {
	"name": o.name, "role": o.role, "coveredEntity": o.coveredEntity,
	"baa": o.baa, "contact": o.contact,
	"path": sprintf("spec.organizations[%d]", [i]),
	"validators": count([n | some n in o.nodes; n.role == "validator"]),
	"votingPower": sum([n.power | some n in o.nodes]),
	"nodeCount": count(o.nodes),
}

peers_of(t) := concat(",", [sprintf("%s@%s:26656", [m.id, m.name]) |
	some m in node_table
	m.name != t.name
])

node_config(t) := {
	"moniker": t.name,
	"rpc": {"laddr": "tcp://0.0.0.0:26657", "cors_allowed_origins": [], "unsafe": false},
	"p2p": {
		"laddr": "tcp://0.0.0.0:26656", "pex": false, "addr_book_strict": true,
		"allow_duplicate_ip": false, "persistent_peers": peers_of(t),
	},
	"consensus": {"timeout_commit": "1s"},
	"tx_index": {"indexer": "null"},
	"instrumentation": {"prometheus": true, "prometheus_listen_addr": ":26660"},
}

nodes := [node_entry(t) | some t in node_table]

node_entry(t) := {
	"name": t.name, "org": t.org, "orgRole": t.orgRole, "role": t.role, "power": t.power,
	"path": sprintf("spec.organizations[%d].nodes[0]", [t.org_index]),
	"image": image,
	"imageRef": {"repository": "hcops/cometbft", "tag": "0.38.17", "digest": digest},
	"resources": {"cpu": "500m", "memory": "512Mi"},
	"storage": {"size": "10Gi", "encrypted": true},
	"config": node_config(t),
}

chain := {"validators": 4, "totalPower": 40, "organizationsWithValidators": 4}

labels(t) := {
	"io.hcops.consortium": name, "io.hcops.org": t.org,
	"io.hcops.node": t.name, "io.hcops.role": t.role,
}

# Node i publishes its RPC on 127.0.0.1:26657 + 10 * i (exposure `internal`: loopback only).
docker_service(i, t) := {
	"image": image, "container_name": t.name, "hostname": t.name,
	"command": ["start", "--home", "/cometbft"],
	"user": "10001:10001", "read_only": true,
	"cap_drop": ["ALL"], "security_opt": ["no-new-privileges:true"],
	"tmpfs": ["/tmp"],
	"environment": {"CMTHOME": "/cometbft"},
	"ports": [sprintf("127.0.0.1:%d:26657", [26657 + (10 * i)])],
	"volumes": [sprintf("%s-data:/cometbft", [t.name])],
	"networks": ["rhn"],
	"labels": labels(t),
	"restart": "unless-stopped",
}

# The node container documents (manifests.dockerContainers, hcops.render.docker_doc): what the Docker
# provider creates, with the same ports and hardening as the compose services above.
docker_container(i, t) := {
	"node": t.name, "name": concat("-", [name, t.name]), "hostname": t.name, "image": image,
	"user": "10001:10001", "command": ["start", "--home", "/cometbft"], "env": {},
	"volume": concat("-", [name, t.name, "data"]), "tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"},
	"ports": [{"container_port": 26657, "protocol": "tcp", "host_ip": "127.0.0.1", "host_port": 26657 + (10 * i)}],
	"network": name, "ipv4_address": sprintf("10.148.0.%d", [10 + i]), "aliases": [t.name],
	"cap_add": [], "cap_drop": ["ALL"], "security_opt": ["no-new-privileges:true"], "privileged": false,
	"read_only": true,
	"resources": {"memory_bytes": 536870912, "memory_swap_bytes": 536870912, "nano_cpus": 500000000, "pids_limit": 512},
	"restart": "unless-stopped", "stop_signal": "SIGTERM",
	"healthcheck": {"test": ["CMD", "/usr/local/bin/hcops-probe"], "interval_s": 15, "timeout_s": 3, "retries": 3, "start_period_s": 15},
	"log_driver": "json-file", "log_options": {"max-file": "3", "max-size": "10m"},
	"files": [{"path": "config/config.toml", "mode": 420, "secret": false, "digest": "0123456789ab"}],
	"labels": labels(t),
}

docker_containers := [docker_container(i, t) |
	some i
	t := node_table[i]
]

docker := {
	"services": {t.name: docker_service(i, t) |
		some i
		t := node_table[i]
	},
	"networks": {"rhn": {"driver": "bridge"}},
	"volumes": {sprintf("%s-data", [t.name]): {} | some t in node_table},
}

pod_labels(t) := {"app.kubernetes.io/part-of": name, "app.kubernetes.io/instance": t.name}

k8s_default_deny := {
	"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
	"metadata": {"name": "default-deny", "namespace": namespace},
	"spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
}

k8s_allow_consortium := {
	"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
	"metadata": {"name": "allow-consortium", "namespace": namespace},
	"spec": {
		"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": name}},
		"policyTypes": ["Ingress", "Egress"],
		"ingress": [{
			"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": name}}}],
			"ports": [{"port": 26656, "protocol": "TCP"}, {"port": 26657, "protocol": "TCP"}],
		}],
		"egress": [
			{"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": name}}}]},
			{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
		],
	},
}

k8s_configmap(t) := {
	"apiVersion": "v1", "kind": "ConfigMap",
	"metadata": {"name": sprintf("%s-config", [t.name]), "namespace": namespace, "labels": pod_labels(t)},
	"data": {"config.toml": concat("", ["moniker = \"", t.name, "\"\n\n[p2p]\npersistent_peers = \"", peers_of(t), "\"\n"])},
}

k8s_service(t) := {
	"apiVersion": "v1", "kind": "Service",
	"metadata": {"name": t.name, "namespace": namespace, "labels": pod_labels(t)},
	"spec": {
		"type": "ClusterIP", "clusterIP": "None",
		"selector": pod_labels(t),
		"ports": [
			{"name": "p2p", "port": 26656, "targetPort": 26656},
			{"name": "rpc", "port": 26657, "targetPort": 26657},
		],
	},
}

container_security := {
	"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
	"runAsNonRoot": true, "capabilities": {"drop": ["ALL"]},
}

k8s_statefulset(t) := {
	"apiVersion": "apps/v1", "kind": "StatefulSet",
	"metadata": {"name": t.name, "namespace": namespace, "labels": pod_labels(t)},
	"spec": {
		"replicas": 1, "serviceName": t.name,
		"selector": {"matchLabels": pod_labels(t)},
		"template": {
			"metadata": {"labels": pod_labels(t)},
			"spec": {
				"automountServiceAccountToken": false,
				"securityContext": {
					"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001, "runAsNonRoot": true,
					"seccompProfile": {"type": "RuntimeDefault"},
				},
				"initContainers": [{
					"name": "init-home", "image": image,
					"command": ["sh", "-c", "cp /config/config.toml /keys/*.json /cometbft/config/"],
					"securityContext": container_security,
					"volumeMounts": [
						{"name": "config", "mountPath": "/config", "readOnly": true},
						{"name": "keys", "mountPath": "/keys", "readOnly": true},
						{"name": "data", "mountPath": "/cometbft"},
					],
				}],
				"containers": [{
					"name": "cometbft", "image": image,
					"args": ["start", "--home", "/cometbft"],
					"env": [{"name": "CMTHOME", "value": "/cometbft"}],
					"ports": [
						{"name": "p2p", "containerPort": 26656},
						{"name": "rpc", "containerPort": 26657},
						{"name": "metrics", "containerPort": 26660},
					],
					"securityContext": container_security,
					"volumeMounts": [{"name": "data", "mountPath": "/cometbft"}, {"name": "tmp", "mountPath": "/tmp"}],
				}],
				"volumes": [
					{"name": "config", "configMap": {"name": sprintf("%s-config", [t.name])}},
					{"name": "keys", "secret": {"secretName": sprintf("%s-keys", [t.name]), "defaultMode": 256}},
					{"name": "tmp", "emptyDir": {}},
				],
			},
		},
		"volumeClaimTemplates": [{
			"metadata": {"name": "data"},
			"spec": {
				"accessModes": ["ReadWriteOnce"], "storageClassName": "encrypted-ssd",
				"resources": {"requests": {"storage": "10Gi"}},
			},
		}],
	},
}

# The namespace, enforcing the restricted Pod Security Standard.
k8s_namespace := {
	"apiVersion": "v1", "kind": "Namespace",
	"metadata": {"name": namespace, "labels": {
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/audit": "restricted",
		"pod-security.kubernetes.io/warn": "restricted",
	}},
}

# Layout (json.patch paths depend on it): [0] default-deny, [1] allow-consortium, then for node i
# [2 + 3i] ConfigMap, [3 + 3i] Service, [4 + 3i] StatefulSet; the Namespace last ([17]).
kubernetes := array.concat(
	array.concat(
		[k8s_default_deny, k8s_allow_consortium],
		[obj |
			some t in node_table
			some obj in [k8s_configmap(t), k8s_service(t), k8s_statefulset(t)]
		],
	),
	[k8s_namespace],
)

example := {
	"apiVersion": "hcops/v1alpha1",
	"kind": "Consortium",
	"metadata": {"name": name},
	"environment": "prod",
	"tier": "production",
	"spec": spec,
	"organizations": organizations,
	"nodes": nodes,
	"chain": chain,
	"manifests": {"docker": docker, "dockerContainers": docker_containers, "kubernetes": kubernetes},
}

# ---------------------------------------------------------------------------------------------
# Variants.

# In array and set comprehensions `some i, x in xs` is a parse error in regopy 1.5.2
# ("Invalid collection"); comprehensions here use `some i` with an index instead. Other regopy
# pitfalls avoided here are listed at the top of lib.rego.
node_indexes := numbers.range(0, count(example.nodes) - 1)

# Setting a config value on every node: [{"op": "add", "path": sprintf("/nodes/%d/config/<key>", [i]), ...} | some i in node_indexes].
# json.patch paths are built with sprintf from literals only: regopy 1.5.2's json.patch rejects paths
# produced by concat(), and sprintf keeps the quotes of a string-literal function argument.

# Patch ops removing the digest from every node image (the dev overlay has none).
no_digest := array.concat(
	[{"op": "add", "path": "/spec/chain/image", "value": tagged_image}],
	array.concat(
		[{"op": "add", "path": sprintf("/nodes/%d/image", [i]), "value": tagged_image} | some i in node_indexes],
		[{"op": "add", "path": sprintf("/nodes/%d/imageRef/digest", [i]), "value": null} | some i in node_indexes],
	),
)

# Patch ops removing the break-glass contacts the base spec does not have (all but st-mary-hospital's).
base_contacts_only := array.concat(
	[{"op": "add", "path": sprintf("/organizations/%d/contact", [i]), "value": null} | some i in [1, 2, 3, 4]],
	[{"op": "add", "path": sprintf("/spec/organizations/%d/contact", [i]), "value": null} | some i in [1, 2, 3, 4]],
)

# Patch ops removing st-mary-hospital's break-glass contact.
no_stmary_contact := [
	{"op": "add", "path": "/organizations/0/contact", "value": null},
	{"op": "add", "path": "/spec/organizations/0/contact", "value": null},
]

example_dev := json.patch(example, array.concat(
	array.concat(
		[
			{"op": "add", "path": "/environment", "value": "dev"},
			{"op": "add", "path": "/tier", "value": "development"},
			{"op": "add", "path": "/spec/tier", "value": "development"},
		],
		no_digest,
	),
	base_contacts_only,
))

# Every organization that runs nodes declares a break-glass contact: no finding at all.
example_all_contacts := json.patch(example, [{
	"op": "add",
	"path": sprintf("/organizations/%d/contact", [i]),
	"value": {"breakGlass": sprintf("oncall@%s.example", [o.name])},
} |
	some i
	o := example.organizations[i]
])

# The peer list of the observer with northside's entry carrying st-mary's node ID.
stolen_id_peers := replace(example.nodes[4].config.p2p.persistent_peers, node_table[1].id, node_table[0].id)

# st-mary-hospital gets the bluecross and cityrx validators: 4 validators in 2 organizations.
two_org_patch := [
	{"op": "add", "path": "/nodes/2/org", "value": "st-mary-hospital"},
	{"op": "add", "path": "/nodes/2/orgRole", "value": "provider"},
	{"op": "add", "path": "/nodes/2/path", "value": "spec.organizations[0].nodes[1]"},
	{"op": "add", "path": "/nodes/3/org", "value": "northside-clinic"},
	{"op": "add", "path": "/nodes/3/path", "value": "spec.organizations[1].nodes[1]"},
	{"op": "add", "path": "/nodes/3/orgRole", "value": "provider"},
	{"op": "add", "path": "/spec/organizations/0/nodes/-", "value": {"name": "bluecross-val-0", "role": "validator", "power": 10}},
	{"op": "add", "path": "/spec/organizations/1/nodes/-", "value": {"name": "cityrx-val-0", "role": "validator", "power": 10}},
	{"op": "add", "path": "/spec/organizations/2/nodes", "value": []},
	{"op": "add", "path": "/spec/organizations/3/nodes", "value": []},
	{"op": "add", "path": "/organizations/0/validators", "value": 2},
	{"op": "add", "path": "/organizations/0/votingPower", "value": 20},
	{"op": "add", "path": "/organizations/0/nodeCount", "value": 2},
	{"op": "add", "path": "/organizations/1/validators", "value": 2},
	{"op": "add", "path": "/organizations/1/votingPower", "value": 20},
	{"op": "add", "path": "/organizations/1/nodeCount", "value": 2},
	{"op": "add", "path": "/organizations/2/validators", "value": 0},
	{"op": "add", "path": "/organizations/2/votingPower", "value": 0},
	{"op": "add", "path": "/organizations/2/nodeCount", "value": 0},
	{"op": "add", "path": "/organizations/3/validators", "value": 0},
	{"op": "add", "path": "/organizations/3/votingPower", "value": 0},
	{"op": "add", "path": "/organizations/3/nodeCount", "value": 0},
	{"op": "add", "path": "/chain/organizationsWithValidators", "value": 2},
]

# cityrx-val-0 becomes an observer: 3 validators of 10 power each.
three_validators_patch := [
	{"op": "add", "path": "/nodes/3/role", "value": "observer"},
	{"op": "add", "path": "/nodes/3/power", "value": 0},
	{"op": "replace", "path": "/spec/organizations/3/nodes/0", "value": {"name": "cityrx-val-0", "role": "observer", "power": 0}},
	{"op": "add", "path": "/organizations/3/validators", "value": 0},
	{"op": "add", "path": "/organizations/3/votingPower", "value": 0},
	{"op": "add", "path": "/chain", "value": {"validators": 3, "totalPower": 30, "organizationsWithValidators": 3}},
]

# One partial-object entry per rule, so that a test evaluates only the variant it uses.
violations["HC-AC1-RPC-PUBLIC"] := json.patch(example, [
	{"op": "add", "path": "/spec/network/rpc/exposure", "value": "public"},
	{"op": "add", "path": "/spec/network/rpc/tls", "value": true},
])

violations["HC-AC1-RPC-PUBLISHED"] := json.patch(example, [{
	"op": "add", "path": "/manifests/docker/services/stmary-val-0/ports",
	"value": ["0.0.0.0:26657:26657"],
}])

violations["HC-AC1-RPC-NODEPORT"] := json.patch(example, [{"op": "add", "path": "/manifests/kubernetes/-", "value": {
	"apiVersion": "v1", "kind": "Service",
	"metadata": {"name": "stmary-val-0-rpc", "namespace": namespace},
	"spec": {
		"type": "NodePort", "selector": pod_labels(node_table[0]),
		"ports": [{"name": "rpc", "port": 26657, "targetPort": 26657, "nodePort": 30657}],
	},
}}])

violations["HC-AC1-RPC-UNSAFE"] := json.patch(example, [{"op": "add", "path": "/nodes/0/config/rpc/unsafe", "value": true}])

violations["HC-AC1-CORS-WILDCARD"] := json.patch(example, array.concat(
	[{"op": "add", "path": "/spec/network/rpc/cors", "value": ["*"]}],
	[{"op": "add", "path": sprintf("/nodes/%d/config/rpc/cors_allowed_origins", [i]), "value": ["*"]} | some i in node_indexes],
))

violations["HC-AC1-NETPOL-DEFAULT-DENY"] := json.patch(example, [{"op": "remove", "path": "/manifests/kubernetes/0"}])

violations["HC-AC1-METRICS-PUBLISHED"] := json.patch(example, [{
	"op": "add", "path": "/manifests/docker/services/stmary-val-0/ports/-",
	"value": "26660:26660",
}])

violations["HC-AC1-METRICS-EXTERNAL-SERVICE"] := json.patch(example, [{"op": "add", "path": "/manifests/kubernetes/-", "value": {
	"apiVersion": "v1", "kind": "Service",
	"metadata": {"name": "stmary-val-0-metrics", "namespace": namespace},
	"spec": {
		"type": "LoadBalancer", "selector": pod_labels(node_table[0]),
		"ports": [{"name": "metrics", "port": 26660, "targetPort": "metrics"}],
	},
}}])

violations["HC-AC2-DUPLICATE-NODE-NAME"] := json.patch(example, [
	{"op": "add", "path": "/nodes/1/name", "value": "stmary-val-0"},
	{"op": "add", "path": "/spec/organizations/1/nodes/0/name", "value": "stmary-val-0"},
])

violations["HC-AC2-DUPLICATE-MONIKER"] := json.patch(example, [{"op": "add", "path": "/nodes/1/config/moniker", "value": "stmary-val-0"}])

violations["HC-AC2-DUPLICATE-NODE-ID"] := json.patch(example, [{"op": "add", "path": "/nodes/4/config/p2p/persistent_peers", "value": stolen_id_peers}])

violations["HC-AC3-BREAK-GLASS-MISSING-PROD"] := json.patch(example, no_stmary_contact)

violations["HC-AC3-BREAK-GLASS-MISSING"] := json.patch(example_dev, no_stmary_contact)

violations["HC-AC5-STORAGE-UNENCRYPTED"] := json.patch(example, [{"op": "add", "path": "/nodes/0/storage/encrypted", "value": false}])

violations["HC-AC5-KEY-IN-ENV"] := json.patch(example, [{
	"op": "add", "path": "/manifests/docker/services/stmary-val-0/environment/PRIV_VALIDATOR_KEY",
	"value": "x0B7b9t0Zr8cYx0sZgI2mSgfyGugr6Wc0qXkR3D7sJgTq3y6Vt8yJ5tFh0dQkC0y3pY1gW6eO9wq5sX8mL2aNQ==",
}])

violations["HC-AC5-KEY-IN-CONFIGMAP"] := json.patch(example, [{
	"op": "add", "path": "/manifests/kubernetes/2/data/priv_validator_key.json",
	"value": "{\"address\": \"A1B2\", \"priv_key\": {\"type\": \"tendermint/PrivKeyEd25519\", \"value\": \"...\"}}",
}])

violations["HC-AU1-AUDIT-DISABLED"] := json.patch(example, [{"op": "add", "path": "/spec/audit/enabled", "value": false}])

violations["HC-AU1-RETENTION-SHORT"] := json.patch(example, [{"op": "add", "path": "/spec/audit/retentionDays", "value": 365}])

violations["HC-AU1-ANCHOR-OFF"] := json.patch(example, [{"op": "add", "path": "/spec/audit/anchorToChain", "value": false}])

violations["HC-AR1-AUDIT-INTERVAL-MISSING"] := json.patch(example, [{"op": "add", "path": "/spec/audit/interval", "value": null}])

violations["HC-AR1-AUDIT-INTERVAL-LONG"] := json.patch(example, [{"op": "add", "path": "/spec/audit/interval", "value": "48h"}])

violations["HC-IN1-IMAGE-LATEST"] := json.patch(example, [
	{"op": "add", "path": "/nodes/0/image", "value": "hcops/cometbft:latest"},
	{"op": "add", "path": "/nodes/0/imageRef", "value": {"repository": "hcops/cometbft", "tag": "latest", "digest": null}},
	{"op": "add", "path": "/spec/organizations/0/nodes/0/image", "value": "hcops/cometbft:latest"},
])

violations["HC-IN1-IMAGE-NO-DIGEST-PROD"] := json.patch(example, no_digest)

violations["HC-IN1-IMAGE-NO-DIGEST"] := example_dev

violations["HC-IN1-DOCKER-ROOTFS-WRITABLE"] := json.patch(example, [{"op": "add", "path": "/manifests/docker/services/stmary-val-0/read_only", "value": false}])

violations["HC-IN1-K8S-ROOTFS-WRITABLE"] := json.patch(example, [{
	"op": "add", "path": "/manifests/kubernetes/4/spec/template/spec/containers/0/securityContext/readOnlyRootFilesystem",
	"value": false,
}])

violations["HC-IN1-K8S-PRIVILEGED"] := json.patch(example, [{
	"op": "add", "path": "/manifests/kubernetes/4/spec/template/spec/containers/0/securityContext/privileged",
	"value": true,
}])

violations["HC-IN1-K8S-PRIVILEGE-ESCALATION"] := json.patch(example, [{
	"op": "remove", "path": "/manifests/kubernetes/4/spec/template/spec/initContainers/0/securityContext/allowPrivilegeEscalation",
}])

violations["HC-IN1-K8S-RUN-AS-ROOT"] := json.patch(example, [{
	"op": "add", "path": "/manifests/kubernetes/4/spec/template/spec/containers/0/securityContext/runAsNonRoot",
	"value": false,
}])

violations["HC-IN1-K8S-CAPABILITIES"] := json.patch(example, [{
	"op": "add", "path": "/manifests/kubernetes/4/spec/template/spec/containers/0/securityContext/capabilities",
	"value": {"drop": ["NET_RAW"]},
}])

violations["HC-IN1-K8S-SECCOMP"] := json.patch(example, [{
	"op": "remove", "path": "/manifests/kubernetes/4/spec/template/spec/securityContext/seccompProfile",
}])

violations["HC-IN1-K8S-SA-TOKEN"] := json.patch(example, [{
	"op": "remove", "path": "/manifests/kubernetes/4/spec/template/spec/automountServiceAccountToken",
}])

violations["HC-IN1-K8S-POD-SECURITY"] := json.patch(example, [{
	"op": "add", "path": "/manifests/kubernetes/17/metadata/labels/pod-security.kubernetes.io~1enforce",
	"value": "baseline",
}])

violations["HC-IN1-DOCKER-CAPABILITIES"] := json.patch(example, [{
	"op": "add", "path": "/manifests/docker/services/stmary-val-0/cap_drop", "value": [],
}])

violations["HC-IN1-DOCKER-NEW-PRIVILEGES"] := json.patch(example, [{
	"op": "add", "path": "/manifests/dockerContainers/0/security_opt", "value": [],
}])

violations["HC-IN1-DOCKER-ROOT-USER"] := json.patch(example, [{
	"op": "add", "path": "/manifests/docker/services/stmary-val-0/user", "value": "0:0",
}])

violations["HC-IN1-DOCKER-PRIVILEGED"] := json.patch(example, [{
	"op": "add", "path": "/manifests/dockerContainers/1/privileged", "value": true,
}])

violations["HC-PA1-ADDR-BOOK-NOT-STRICT"] := json.patch(example, array.concat(
	[{"op": "add", "path": "/spec/network/p2p/addrBookStrict", "value": false}],
	[{"op": "add", "path": sprintf("/nodes/%d/config/p2p/addr_book_strict", [i]), "value": false} | some i in node_indexes],
))

violations["HC-PA1-DUPLICATE-IP-ALLOWED"] := json.patch(example, array.concat(
	[{"op": "add", "path": "/spec/network/p2p/allowDuplicateIp", "value": true}],
	[{"op": "add", "path": sprintf("/nodes/%d/config/p2p/allow_duplicate_ip", [i]), "value": true} | some i in node_indexes],
))

violations["HC-PA1-PERSISTENT-PEERS-MISSING"] := json.patch(example, [{"op": "add", "path": "/nodes/4/config/p2p/persistent_peers", "value": ""}])

violations["HC-PA1-PEX-ENABLED"] := json.patch(example, array.concat(
	[{"op": "add", "path": "/spec/network/p2p/pex", "value": true}],
	[{"op": "add", "path": sprintf("/nodes/%d/config/p2p/pex", [i]), "value": true} | some i in node_indexes],
))

violations["HC-TS2-RPC-TLS-MISSING"] := json.patch(example, [{"op": "add", "path": "/spec/network/rpc/exposure", "value": "consortium"}])

violations["HC-TS1-PLAINTEXT-RPC-PUBLISHED"] := json.patch(example, [
	{"op": "add", "path": "/spec/network/rpc/exposure", "value": "consortium"},
	{"op": "add", "path": "/manifests/docker/services/stmary-val-0/ports", "value": ["26657:26657"]},
])

violations["HC-TS1-PLAINTEXT-RPC-SERVICE"] := json.patch(example, [{"op": "add", "path": "/manifests/kubernetes/-", "value": {
	"apiVersion": "v1", "kind": "Service",
	"metadata": {"name": "stmary-val-0-rpc", "namespace": namespace},
	"spec": {
		"type": "LoadBalancer", "selector": pod_labels(node_table[0]),
		"loadBalancerSourceRanges": ["203.0.113.0/24"],
		"ports": [{"name": "rpc", "port": 26657, "targetPort": "rpc"}],
	},
}}])

violations["HC-CP1-BACKUP-DISABLED"] := json.patch(example, [{"op": "add", "path": "/spec/backup/enabled", "value": false}])

violations["HC-CP1-BACKUP-SCHEDULE-MISSING"] := json.patch(example, [{"op": "add", "path": "/spec/backup/schedule", "value": ""}])

violations["HC-CP1-BACKUP-RETENTION-SHORT"] := json.patch(example, [{"op": "add", "path": "/spec/backup/retentionDays", "value": 30}])

violations["HC-CP1-TOO-FEW-VALIDATORS"] := json.patch(example, three_validators_patch)

violations["HC-CP1-VALIDATOR-ORGS"] := json.patch(example, two_org_patch)

violations["HC-CP1-POWER-CONCENTRATION"] := json.patch(example, [
	{"op": "add", "path": "/nodes/0/power", "value": 30},
	{"op": "add", "path": "/spec/organizations/0/nodes/0/power", "value": 30},
	{"op": "add", "path": "/organizations/0/votingPower", "value": 30},
	{"op": "add", "path": "/chain/totalPower", "value": 60},
])

violations["HC-PHI1-PHI-ON-CHAIN"] := json.patch(example, [{"op": "add", "path": "/spec/data/phiOnChain", "value": "allowed"}])

violations["HC-PHI1-TX-INDEX-PAYLOADS"] := json.patch(example, array.concat(
	[
		{"op": "add", "path": "/spec/data/phiOnChain", "value": "hashes-only"},
		{"op": "add", "path": "/spec/data/txIndex", "value": "kv"},
	],
	[{"op": "add", "path": sprintf("/nodes/%d/config/tx_index/indexer", [i]), "value": "kv"} | some i in node_indexes],
))

violations["HC-PHI1-HASHES-ONLY"] := json.patch(example, [{"op": "add", "path": "/spec/data/phiOnChain", "value": "hashes-only"}])

violations["HC-AZ1-BAA-MISSING"] := json.patch(example, [
	{"op": "add", "path": "/organizations/2/baa", "value": null},
	{"op": "add", "path": "/spec/organizations/2/baa", "value": null},
])

violations["HC-AZ1-BAA-UNDATED"] := json.patch(example, [
	{"op": "add", "path": "/organizations/2/baa", "value": {"signed": true, "signedOn": null}},
	{"op": "add", "path": "/spec/organizations/2/baa", "value": {"signed": true, "signedOn": null}},
])

# Further documents for the differential corpus (policies/testdata/variants/<name>/input.json): other
# spellings of the same mistakes, exercising the parsing helpers of lib.rego in both engines.
variants["all-contacts"] := example_all_contacts

variants["docker-env-list"] := json.patch(example, [{
	"op": "add", "path": "/manifests/docker/services/stmary-val-0/environment",
	"value": ["CMTHOME=/cometbft", "node_secret=hunter2", "PRIV_VALIDATOR_KEY_FILE=/run/secrets/key.json", "API_KEY"],
}])

variants["kubernetes-env-literal"] := json.patch(example, [{
	"op": "add", "path": "/manifests/kubernetes/4/spec/template/spec/containers/0/env/-",
	"value": {"name": "VALIDATOR_KEY", "value": "eyJwcml2X2tleSI6ICIuLi4ifQ=="},
}])

variants["docker-port-forms"] := json.patch(example, [{
	"op": "add", "path": "/manifests/docker/services/stmary-val-0/ports",
	"value": [
		{"target": 26657, "published": "26657"}, "10.0.0.5:26657:26657/tcp",
		"26650-26670:26650-26670", 26660, "[::1]:26657:26657",
	],
}])

variants["consortium-nodeport"] := json.patch(example, [
	{"op": "add", "path": "/spec/network/rpc/exposure", "value": "consortium"},
	{"op": "add", "path": "/manifests/kubernetes/-", "value": {
		"apiVersion": "v1", "kind": "Service",
		"metadata": {"name": "stmary-val-0-rpc", "namespace": namespace},
		"spec": {"type": "NodePort", "ports": [{"name": "rpc", "port": 26657, "targetPort": "rpc"}]},
	}},
])

variants["configmap-key-content"] := json.patch(example, [{
	"op": "add", "path": "/manifests/kubernetes/5/data/keys",
	"value": "{\"id\": \"x\", \"priv_key\": {\"type\": \"tendermint/PrivKeyEd25519\"}}",
}])

variants["untagged-image-no-environment"] := json.patch(example, [
	{"op": "add", "path": "/environment", "value": null},
	{"op": "add", "path": "/tier", "value": null},
	{"op": "remove", "path": "/spec/tier"},
	{"op": "add", "path": "/nodes/1/image", "value": "hcops/cometbft"},
	{"op": "add", "path": "/nodes/1/imageRef", "value": {"repository": "hcops/cometbft", "tag": null, "digest": null}},
	{"op": "add", "path": "/spec/network/rpc/unsafe", "value": true},
	{"op": "add", "path": "/nodes/2/config/rpc/unsafe", "value": true},
])

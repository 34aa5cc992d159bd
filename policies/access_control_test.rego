package hcops.hipaa.access_control_test

import rego.v1

import data.hcops.hipaa.access_control as policy
import data.hcops.hipaa.lib
import data.hcops.hipaa.testdata as td

# The findings of this package for a whole input document (key by key, see testdata_test.rego). The
# tier is passed as hcops builds it; every document of the corpus has the key.
denies(doc) := r if {
	tier := object.get(doc, "tier", null)
	r := policy.deny with input.metadata as doc.metadata
		with input.environment as doc.environment
		with input.tier as tier
		with input.spec as doc.spec
		with input.organizations as doc.organizations
		with input.nodes as doc.nodes
		with input.chain as doc.chain
		with input.manifests as doc.manifests
}

warns(doc) := r if {
	tier := object.get(doc, "tier", null)
	r := policy.warn with input.metadata as doc.metadata
		with input.environment as doc.environment
		with input.tier as tier
		with input.spec as doc.spec
		with input.organizations as doc.organizations
		with input.nodes as doc.nodes
		with input.chain as doc.chain
		with input.manifests as doc.manifests
}

patched(ops) := json.patch(td.example, ops)

# Variant of the example whose st-mary docker service publishes `ports`.
with_ports(ports) := patched([{"op": "add", "path": "/manifests/docker/services/stmary-val-0/ports", "value": ports}])

with_exposure(doc, exposure, tls) := json.patch(doc, [
	{"op": "add", "path": "/spec/network/rpc/exposure", "value": exposure},
	{"op": "add", "path": "/spec/network/rpc/tls", "value": tls},
])

# Variant of the example with one more Kubernetes object.
with_object(obj) := patched([{"op": "add", "path": "/manifests/kubernetes/-", "value": obj}])

rpc_service(type, extra) := {
	"apiVersion": "v1", "kind": "Service",
	"metadata": {"name": "stmary-val-0-rpc", "namespace": td.namespace},
	"spec": object.union({"type": type, "ports": [{"name": "rpc", "port": 26657, "targetPort": 26657}]}, extra),
}

# --- HC-AC1-RPC-PUBLIC

test_rpc_public_fires if {
	some f in td.with_id(denies(td.violations["HC-AC1-RPC-PUBLIC"]), "HC-AC1-RPC-PUBLIC")
	f.resource == "network/regional-health-net"
	f.path == "spec.network.rpc.exposure"
}

test_rpc_public_passes if {
	not "HC-AC1-RPC-PUBLIC" in td.ids(denies(td.example))
	not "HC-AC1-RPC-PUBLIC" in td.ids(denies(with_exposure(td.example, "consortium", true)))
}

# --- HC-AC1-RPC-PUBLISHED

test_rpc_published_fires if {
	some f in td.with_id(denies(td.violations["HC-AC1-RPC-PUBLISHED"]), "HC-AC1-RPC-PUBLISHED")
	f.resource == "manifest/docker/service/stmary-val-0"
	f.path == "spec.network.rpc.exposure"
}

test_rpc_published_fires_on_all_port_forms if {
	every ports in [
		["26657:26657"],
		["26657"],
		[26657],
		["10.0.0.5:26657:26657/tcp"],
		["26650-26670:26650-26670"],
		[{"target": 26657, "published": "26657", "protocol": "tcp"}],
		[{"target": 26657, "published": "26657", "host_ip": "0.0.0.0"}],
	] {
		"HC-AC1-RPC-PUBLISHED" in td.ids(denies(with_ports(ports)))
	}
}

test_rpc_published_fires_for_a_container_document if {
	doc := patched([{"op": "add", "path": "/manifests/dockerContainers/0/ports/0/host_ip", "value": "0.0.0.0"}])
	some f in td.with_id(denies(doc), "HC-AC1-RPC-PUBLISHED")
	f.resource == "manifest/docker/container/regional-health-net-stmary-val-0"
}

test_rpc_published_fires_for_host_exposure if {
	doc := with_exposure(with_ports(["26657:26657"]), "host", false)
	"HC-AC1-RPC-PUBLISHED" in td.ids(denies(doc))
}

test_rpc_published_passes if {
	not "HC-AC1-RPC-PUBLISHED" in td.ids(denies(td.example))
	accepted := [
		["127.0.0.1:26657:26657"],
		["[::1]:26657:26657"],
		[{"target": 26657, "published": "26657", "host_ip": "127.0.0.1"}],
		["0.0.0.0:26656:26656"],
		[],
	]

	# (`not` inside an `every` body fails in regopy 1.5.2, hence the comprehension)
	fired := [ports | some ports in accepted; "HC-AC1-RPC-PUBLISHED" in td.ids(denies(with_ports(ports)))]
	fired == []
}

test_rpc_published_passes_for_consortium_exposure if {
	doc := with_exposure(with_ports(["26657:26657"]), "consortium", true)
	not "HC-AC1-RPC-PUBLISHED" in td.ids(denies(doc))
}

# --- HC-AC1-RPC-NODEPORT

test_rpc_nodeport_fires if {
	some f in td.with_id(denies(td.violations["HC-AC1-RPC-NODEPORT"]), "HC-AC1-RPC-NODEPORT")
	f.resource == "manifest/kubernetes/Service/stmary-val-0-rpc"
	f.path == "spec.network.rpc.exposure"
}

test_rpc_nodeport_fires_for_load_balancer if {
	"HC-AC1-RPC-NODEPORT" in td.ids(denies(with_object(rpc_service("LoadBalancer", {}))))
}

test_rpc_nodeport_fires_for_consortium if {
	nodeport := with_exposure(with_object(rpc_service("NodePort", {})), "consortium", true)
	"HC-AC1-RPC-NODEPORT" in td.ids(denies(nodeport))
	open_lb := with_exposure(with_object(rpc_service("LoadBalancer", {})), "consortium", true)
	"HC-AC1-RPC-NODEPORT" in td.ids(denies(open_lb))
}

test_rpc_nodeport_passes if {
	not "HC-AC1-RPC-NODEPORT" in td.ids(denies(td.example))
	not "HC-AC1-RPC-NODEPORT" in td.ids(denies(with_object(rpc_service("ClusterIP", {}))))
}

test_rpc_nodeport_passes_for_restricted_consortium_load_balancer if {
	lb := rpc_service("LoadBalancer", {"loadBalancerSourceRanges": ["198.51.100.0/24"]})
	doc := with_exposure(with_object(lb), "consortium", true)
	not "HC-AC1-RPC-NODEPORT" in td.ids(denies(doc))
}

# --- HC-AC1-RPC-UNSAFE

test_rpc_unsafe_fires if {
	findings := td.with_id(denies(td.violations["HC-AC1-RPC-UNSAFE"]), "HC-AC1-RPC-UNSAFE")
	count(findings) == 1
	some f in findings
	f.resource == "node/stmary-val-0"
	f.path == "spec.organizations[0].nodes[0]"
}

test_rpc_unsafe_fires_with_spec_path if {
	doc := json.patch(td.violations["HC-AC1-RPC-UNSAFE"], [{"op": "add", "path": "/spec/network/rpc/unsafe", "value": true}])
	some f in td.with_id(denies(doc), "HC-AC1-RPC-UNSAFE")
	f.path == "spec.network.rpc.unsafe"
}

test_rpc_unsafe_passes if {
	not "HC-AC1-RPC-UNSAFE" in td.ids(denies(td.example))
}

# --- HC-AC1-CORS-WILDCARD

test_cors_wildcard_fires if {
	findings := td.with_id(denies(td.violations["HC-AC1-CORS-WILDCARD"]), "HC-AC1-CORS-WILDCARD")
	count(findings) == 5
	some f in findings
	f.resource == "node/state-obs-0"
	f.path == "spec.network.rpc.cors"
}

test_cors_wildcard_passes if {
	not "HC-AC1-CORS-WILDCARD" in td.ids(denies(td.example))
	origins := [{"op": "add", "path": sprintf("/nodes/%d/config/rpc/cors_allowed_origins", [i]), "value": ["https://portal.stmary.example"]} | some i in td.node_indexes]
	doc := json.patch(td.example, array.concat([], origins))
	not "HC-AC1-CORS-WILDCARD" in td.ids(denies(doc))
}

# --- HC-AC1-NETPOL-DEFAULT-DENY

test_netpol_default_deny_fires if {
	some f in td.with_id(denies(td.violations["HC-AC1-NETPOL-DEFAULT-DENY"]), "HC-AC1-NETPOL-DEFAULT-DENY")
	f.resource == "network/regional-health-net"
	f.path == "spec.provider.kubernetes.namespace"
}

test_netpol_default_deny_fires_for_weak_policies if {
	with_ingress_rule := patched([{"op": "add", "path": "/manifests/kubernetes/0/spec/ingress", "value": [{}]}])
	"HC-AC1-NETPOL-DEFAULT-DENY" in td.ids(denies(with_ingress_rule))
	some_pods := patched([{"op": "add", "path": "/manifests/kubernetes/0/spec/podSelector/matchLabels", "value": {"app": "x"}}])
	"HC-AC1-NETPOL-DEFAULT-DENY" in td.ids(denies(some_pods))
	egress_only := patched([{"op": "add", "path": "/manifests/kubernetes/0/spec/policyTypes", "value": ["Egress"]}])
	"HC-AC1-NETPOL-DEFAULT-DENY" in td.ids(denies(egress_only))
	other_namespace := patched([{"op": "add", "path": "/manifests/kubernetes/0/metadata/namespace", "value": "other"}])
	"HC-AC1-NETPOL-DEFAULT-DENY" in td.ids(denies(other_namespace))
}

test_netpol_default_deny_passes if {
	not "HC-AC1-NETPOL-DEFAULT-DENY" in td.ids(denies(td.example))

	# without a namespace in the spec the objects are rendered into the network's name
	unset := patched([{"op": "add", "path": "/spec/provider/kubernetes/namespace", "value": null}])
	not "HC-AC1-NETPOL-DEFAULT-DENY" in td.ids(denies(unset))
	no_k8s := patched([{"op": "add", "path": "/manifests/kubernetes", "value": []}])
	not "HC-AC1-NETPOL-DEFAULT-DENY" in td.ids(denies(no_k8s))
	implicit_types := patched([{"op": "remove", "path": "/manifests/kubernetes/0/spec/policyTypes"}])
	not "HC-AC1-NETPOL-DEFAULT-DENY" in td.ids(denies(implicit_types))
}

test_netpol_default_deny_per_namespace if {
	# an organization's own namespace (spec.organizations[].kubernetes.namespace) needs its own default deny
	svc := {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "orgb-val-0", "namespace": "org-b"}}
	without := patched([{"op": "add", "path": "/manifests/kubernetes/-", "value": svc}])
	some f in td.with_id(denies(without), "HC-AC1-NETPOL-DEFAULT-DENY")
	contains(f.msg, "namespace org-b")
	deny_b := json.patch(input_default_deny, [{"op": "replace", "path": "/metadata/namespace", "value": "org-b"}])
	both := patched([
		{"op": "add", "path": "/manifests/kubernetes/-", "value": svc},
		{"op": "add", "path": "/manifests/kubernetes/-", "value": deny_b},
	])
	not "HC-AC1-NETPOL-DEFAULT-DENY" in td.ids(denies(both))
}

input_default_deny := td.example.manifests.kubernetes[0]

# --- HC-AC1-METRICS-PUBLISHED

test_metrics_published_fires if {
	some f in td.with_id(warns(td.violations["HC-AC1-METRICS-PUBLISHED"]), "HC-AC1-METRICS-PUBLISHED")
	f.resource == "manifest/docker/service/stmary-val-0"
}

test_metrics_published_passes if {
	not "HC-AC1-METRICS-PUBLISHED" in td.ids(warns(td.example))
	doc := with_ports(["127.0.0.1:26657:26657", "127.0.0.1:26660:26660"])
	not "HC-AC1-METRICS-PUBLISHED" in td.ids(warns(doc))
}

# --- HC-AC1-METRICS-EXTERNAL-SERVICE

test_metrics_external_service_fires if {
	findings := warns(td.violations["HC-AC1-METRICS-EXTERNAL-SERVICE"])
	some f in td.with_id(findings, "HC-AC1-METRICS-EXTERNAL-SERVICE")
	f.resource == "manifest/kubernetes/Service/stmary-val-0-metrics"
}

test_metrics_external_service_passes if {
	not "HC-AC1-METRICS-EXTERNAL-SERVICE" in td.ids(warns(td.example))
}

# --- HC-AC2-DUPLICATE-NODE-NAME

test_duplicate_node_name_fires if {
	findings := td.with_id(denies(td.violations["HC-AC2-DUPLICATE-NODE-NAME"]), "HC-AC2-DUPLICATE-NODE-NAME")
	count(findings) == 1
	some f in findings
	f.resource == "node/stmary-val-0"
	f.path == "spec.organizations[1].nodes[0].name"
}

test_duplicate_node_name_passes if {
	not "HC-AC2-DUPLICATE-NODE-NAME" in td.ids(denies(td.example))
}

# --- HC-AC2-DUPLICATE-MONIKER

test_duplicate_moniker_fires if {
	some f in td.with_id(denies(td.violations["HC-AC2-DUPLICATE-MONIKER"]), "HC-AC2-DUPLICATE-MONIKER")
	f.resource == "node/northside-val-0"
	f.path == "spec.organizations[1].nodes[0]"
}

test_duplicate_moniker_passes if {
	not "HC-AC2-DUPLICATE-MONIKER" in td.ids(denies(td.example))
}

# --- HC-AC2-DUPLICATE-NODE-ID

test_duplicate_node_id_fires if {
	findings := td.with_id(denies(td.violations["HC-AC2-DUPLICATE-NODE-ID"]), "HC-AC2-DUPLICATE-NODE-ID")
	count(findings) == 1
	some f in findings
	f.resource == "network/regional-health-net"
	contains(f.msg, td.node_table[0].id)
	contains(f.msg, "northside-val-0:26656, stmary-val-0:26656")
}

test_duplicate_node_id_passes if {
	not "HC-AC2-DUPLICATE-NODE-ID" in td.ids(denies(td.example))
}

# --- lib.is_prod: the tier decides, the environment name is for display

test_is_prod_by_tier if {
	lib.is_prod with input.tier as "production" with input.environment as "eu-west"
	lib.is_prod with input.tier as "production" with input.environment as null
}

test_is_prod_not_by_environment_name_when_a_tier_is_given if {
	not lib.is_prod with input.tier as "development" with input.environment as "prod"
	not lib.is_prod with input.tier as "staging" with input.environment as "production"
	not lib.is_prod with input.tier as null with input.environment as "prod"
	not lib.is_prod with input.tier as "Production" with input.environment as "prod"
}

test_is_prod_falls_back_on_the_name_without_a_tier_key if {
	lib.is_prod with input.environment as "Production"
	lib.is_prod with input.environment as "prod"
	not lib.is_prod with input.environment as "./prod"
	not lib.is_prod with input.environment as null
}

# --- HC-AC3-BREAK-GLASS-MISSING-PROD (deny in production) and HC-AC3-BREAK-GLASS-MISSING (warn)

test_break_glass_missing_prod_fires if {
	findings := td.with_id(denies(td.violations["HC-AC3-BREAK-GLASS-MISSING-PROD"]), "HC-AC3-BREAK-GLASS-MISSING-PROD")
	count(findings) == 1
	some f in findings
	f.resource == "org/st-mary-hospital"
	f.path == "spec.organizations[0].contact.breakGlass"
	not "HC-AC3-BREAK-GLASS-MISSING" in td.ids(warns(td.violations["HC-AC3-BREAK-GLASS-MISSING-PROD"]))
}

test_break_glass_missing_prod_fires_whatever_the_environment_is_called if {
	doc := json.patch(td.violations["HC-AC3-BREAK-GLASS-MISSING-PROD"], [{"op": "add", "path": "/environment", "value": "eu-1"}])
	"HC-AC3-BREAK-GLASS-MISSING-PROD" in td.ids(denies(doc))
	dev_named_prod := json.patch(td.violations["HC-AC3-BREAK-GLASS-MISSING"], [{"op": "add", "path": "/tier", "value": "production"}])
	"HC-AC3-BREAK-GLASS-MISSING-PROD" in td.ids(denies(dev_named_prod))
}

test_break_glass_missing_prod_passes if {
	not "HC-AC3-BREAK-GLASS-MISSING-PROD" in td.ids(denies(td.example))
	not "HC-AC3-BREAK-GLASS-MISSING-PROD" in td.ids(denies(td.example_dev))
	not "HC-AC3-BREAK-GLASS-MISSING-PROD" in td.ids(denies(td.violations["HC-AC3-BREAK-GLASS-MISSING"]))
	staging := json.patch(td.violations["HC-AC3-BREAK-GLASS-MISSING-PROD"], [{"op": "add", "path": "/tier", "value": "staging"}])
	not "HC-AC3-BREAK-GLASS-MISSING-PROD" in td.ids(denies(staging))
	"HC-AC3-BREAK-GLASS-MISSING" in td.ids(warns(staging))
}

test_break_glass_missing_fires if {
	findings := td.with_id(warns(td.violations["HC-AC3-BREAK-GLASS-MISSING"]), "HC-AC3-BREAK-GLASS-MISSING")
	count(findings) == 5
	some f in findings
	f.resource == "org/st-mary-hospital"
	f.path == "spec.organizations[0].contact.breakGlass"
}

test_break_glass_missing_fires_on_the_dev_example if {
	findings := td.with_id(warns(td.example_dev), "HC-AC3-BREAK-GLASS-MISSING")
	{f.resource | some f in findings} == {
		"org/northside-clinic", "org/bluecross-payer",
		"org/cityrx-pharmacy", "org/state-health-dept",
	}
}

test_break_glass_missing_fires_without_a_tier if {
	doc := json.patch(td.violations["HC-AC3-BREAK-GLASS-MISSING"], [
		{"op": "add", "path": "/tier", "value": null},
		{"op": "add", "path": "/environment", "value": null},
	])
	"HC-AC3-BREAK-GLASS-MISSING" in td.ids(warns(doc))
	not "HC-AC3-BREAK-GLASS-MISSING-PROD" in td.ids(denies(doc))
}

test_break_glass_missing_passes if {
	not "HC-AC3-BREAK-GLASS-MISSING" in td.ids(warns(td.example))
	not "HC-AC3-BREAK-GLASS-MISSING" in td.ids(warns(td.example_all_contacts))
}

test_break_glass_missing_passes_for_org_without_nodes if {
	doc := json.patch(td.example_dev, [{"op": "add", "path": "/organizations/4/nodeCount", "value": 0}])
	findings := td.with_id(warns(doc), "HC-AC3-BREAK-GLASS-MISSING")
	not "org/state-health-dept" in {f.resource | some f in findings}
	count(findings) == 3
}

# --- HC-AC5-STORAGE-UNENCRYPTED

test_storage_unencrypted_fires if {
	some f in td.with_id(denies(td.violations["HC-AC5-STORAGE-UNENCRYPTED"]), "HC-AC5-STORAGE-UNENCRYPTED")
	f.resource == "node/stmary-val-0"
	f.path == "spec.organizations[0].nodes[0].storage.encrypted"
}

test_storage_unencrypted_fires_when_unset if {
	doc := patched([{"op": "add", "path": "/nodes/1/storage", "value": {"size": "10Gi"}}])
	"HC-AC5-STORAGE-UNENCRYPTED" in td.ids(denies(doc))
}

test_storage_unencrypted_passes if {
	not "HC-AC5-STORAGE-UNENCRYPTED" in td.ids(denies(td.example))
}

# --- HC-AC5-KEY-IN-ENV

test_key_in_env_fires if {
	some f in td.with_id(denies(td.violations["HC-AC5-KEY-IN-ENV"]), "HC-AC5-KEY-IN-ENV")
	f.resource == "manifest/docker/service/stmary-val-0"
	contains(f.msg, "PRIV_VALIDATOR_KEY")
}

test_key_in_env_fires_for_list_form if {
	doc := patched([{
		"op": "add", "path": "/manifests/docker/services/stmary-val-0/environment",
		"value": ["CMTHOME=/cometbft", "node_secret=hunter2"],
	}])
	"HC-AC5-KEY-IN-ENV" in td.ids(denies(doc))
}

test_key_in_env_fires_for_a_node_container if {
	doc := patched([{"op": "add", "path": "/manifests/dockerContainers/1/env/NODE_SECRET", "value": "hunter2"}])
	some f in td.with_id(denies(doc), "HC-AC5-KEY-IN-ENV")
	startswith(f.resource, "manifest/docker/container/")
	contains(f.msg, "NODE_SECRET")
}

test_key_in_env_fires_for_kubernetes if {
	doc := patched([{
		"op": "add", "path": "/manifests/kubernetes/4/spec/template/spec/containers/0/env/-",
		"value": {"name": "VALIDATOR_KEY", "value": "eyJwcml2X2tleSI6ICIuLi4ifQ=="},
	}])
	some f in td.with_id(denies(doc), "HC-AC5-KEY-IN-ENV")
	f.resource == "manifest/kubernetes/StatefulSet/stmary-val-0"
}

test_key_in_env_passes if {
	not "HC-AC5-KEY-IN-ENV" in td.ids(denies(td.example))
	doc := patched([
		{
			"op": "add", "path": "/manifests/docker/services/stmary-val-0/environment",
			"value": ["PRIV_VALIDATOR_KEY_FILE=/run/secrets/priv_validator_key.json", "API_KEY", "SECRET_DIR=/run/secrets"],
		},
		{
			"op": "add", "path": "/manifests/kubernetes/4/spec/template/spec/containers/0/env/-",
			"value": {"name": "VALIDATOR_KEY", "valueFrom": {"secretKeyRef": {"name": "stmary-val-0-keys", "key": "k"}}},
		},
	])
	not "HC-AC5-KEY-IN-ENV" in td.ids(denies(doc))
}

# --- HC-AC5-KEY-IN-CONFIGMAP

test_key_in_configmap_fires if {
	some f in td.with_id(denies(td.violations["HC-AC5-KEY-IN-CONFIGMAP"]), "HC-AC5-KEY-IN-CONFIGMAP")
	f.resource == "manifest/kubernetes/ConfigMap/stmary-val-0-config"
}

test_key_in_configmap_fires_for_key_content if {
	doc := patched([{
		"op": "add", "path": "/manifests/kubernetes/5/data/keys",
		"value": "{\"id\": \"x\", \"priv_key\": {\"type\": \"tendermint/PrivKeyEd25519\"}}",
	}])
	"HC-AC5-KEY-IN-CONFIGMAP" in td.ids(denies(doc))
}

test_key_in_configmap_passes if {
	not "HC-AC5-KEY-IN-CONFIGMAP" in td.ids(denies(td.example))
}

# HIPAA Security Rule 164.312(a): access control (catalogue AC-1, AC-2, AC-3, AC-5).
#
# AC-4 (automatic logoff: operator/API token TTL) has no field in the consortium spec yet and is
# not checked at the gate.
package hcops.hipaa.access_control

import rego.v1

import data.hcops.hipaa.lib

# METADATA
# title: RPC exposed to the public
# description: >-
#   spec.network.rpc.exposure is `public`: the node RPC (which serves every transaction and block)
#   is reachable beyond the consortium. AC-1 requires RPC and admin endpoints to stay within the
#   consortium. Deny; a consortium that deliberately publishes de-identified data must record a
#   waiver with its justification.
# scope: rule
# custom:
#   id: HC-AC1-RPC-PUBLIC
#   control: AC-1
#   hipaa:
#     - 164.312(a)(1)
#   severity: high
#   remediation: >-
#     Set spec.network.rpc.exposure to `consortium` (with tls: true), `internal` or `host`, or
#     waive the finding with a justification, approver and expiry.
deny contains f if {
	lib.exposure == "public"
	f := {
		"id": "HC-AC1-RPC-PUBLIC",
		"msg": "RPC exposure is `public`: the node RPC is reachable beyond the consortium",
		"resource": lib.network_resource,
		"path": "spec.network.rpc.exposure",
	}
}

# METADATA
# title: RPC port published beyond its exposure (docker)
# description: >-
#   With exposure `host` or `internal` the RPC port may only be published on a loopback address
#   (127.0.0.1 or ::1). A compose port mapping without a host IP, or on 0.0.0.0 or another host
#   address, makes the RPC reachable from the network (the classic launcher default). Deny.
# scope: rule
# custom:
#   id: HC-AC1-RPC-PUBLISHED
#   control: AC-1
#   hipaa:
#     - 164.312(a)(1)
#   severity: high
#   remediation: >-
#     Publish the RPC port as "127.0.0.1:<host-port>:26657" or not at all, or raise
#     spec.network.rpc.exposure to `consortium` with tls: true if the RPC must be reachable.
deny contains f if {
	lib.exposure in {"host", "internal"}
	some p in lib.docker_published
	some port in lib.rpc_ports
	lib.port_matches(p.target, port)
	f := {
		"id": "HC-AC1-RPC-PUBLISHED",
		"msg": concat("", [
			p.kind, " ", p.service, " publishes the RPC port ", p.target, " on ", host_label(p.host_ip),
			" (ports entry ", sprintf("%v", [p.raw]), ") while RPC exposure is `", lib.exposure, "`",
		]),
		"resource": p.resource,
		"path": "spec.network.rpc.exposure",
	}
}

host_label("") := "all interfaces"

host_label(h) := h if h != ""

# METADATA
# title: RPC exposed outside the cluster (kubernetes)
# description: >-
#   A Service of type NodePort or LoadBalancer makes the RPC port reachable from outside the
#   cluster. Denied when exposure is `host` or `internal`. With exposure `consortium`, NodePort is
#   denied (it opens the port on every cluster node to any source) and LoadBalancer is only
#   accepted with spec.loadBalancerSourceRanges restricting it to consortium networks. `public`
#   exposure is reported by HC-AC1-RPC-PUBLIC instead.
# scope: rule
# custom:
#   id: HC-AC1-RPC-NODEPORT
#   control: AC-1
#   hipaa:
#     - 164.312(a)(1)
#   severity: high
#   remediation: >-
#     Use a ClusterIP Service for RPC, or for `consortium` exposure a LoadBalancer with
#     loadBalancerSourceRanges listing the member organizations' networks.
deny contains f if {
	some svc in lib.k8s_external_services
	lib.k8s_service_exposes_rpc(svc)
	rpc_service_too_open(svc)
	f := {
		"id": "HC-AC1-RPC-NODEPORT",
		"msg": sprintf(
			"Service %s of type %s exposes the RPC port outside the cluster while RPC exposure is `%s`",
			[svc.metadata.name, lib.service_type(svc), lib.exposure],
		),
		"resource": lib.k8s_resource(svc),
		"path": "spec.network.rpc.exposure",
	}
}

rpc_service_too_open(_) if lib.exposure in {"host", "internal"}

rpc_service_too_open(svc) if {
	lib.exposure == "consortium"
	lib.service_type(svc) == "NodePort"
}

rpc_service_too_open(svc) if {
	lib.exposure == "consortium"
	lib.service_type(svc) == "LoadBalancer"
	count(object.get(svc.spec, "loadBalancerSourceRanges", [])) == 0
}

# METADATA
# title: Unsafe RPC methods enabled
# description: >-
#   CometBFT's `rpc.unsafe = true` enables the unsafe RPC routes (dial_seeds, dial_peers,
#   unsafe_flush_mempool, ...), letting any RPC client change the node's peer set. Deny.
# scope: rule
# custom:
#   id: HC-AC1-RPC-UNSAFE
#   control: AC-1
#   hipaa:
#     - 164.312(a)(1)
#   severity: high
#   remediation: Set rpc.unsafe = false in the node configuration (the hcops default).
deny contains f if {
	some n in input.nodes
	object.get(n.config, ["rpc", "unsafe"], false) == true
	f := {
		"id": "HC-AC1-RPC-UNSAFE",
		"msg": sprintf("node %s enables the unsafe RPC routes (rpc.unsafe = true)", [n.name]),
		"resource": lib.node_resource(n),
		"path": unsafe_path(n),
	}
}

# The spec sets unsafe RPC for the whole network, or the node's rendered configuration does.
unsafe_path(_) := "spec.network.rpc.unsafe" if {
	object.get(input.spec, ["network", "rpc", "unsafe"], false) == true
}

unsafe_path(n) := n.path if {
	not object.get(input.spec, ["network", "rpc", "unsafe"], false) == true
}

# METADATA
# title: CORS allows any origin
# description: >-
#   A node's rpc.cors_allowed_origins contains `*`, so any web page a user visits can call the
#   node RPC from the browser. Deny.
# scope: rule
# custom:
#   id: HC-AC1-CORS-WILDCARD
#   control: AC-1
#   hipaa:
#     - 164.312(a)(1)
#   severity: high
#   remediation: >-
#     List the exact origins of the consortium's applications in spec.network.rpc.cors, or leave
#     it empty.
deny contains f if {
	some n in input.nodes
	"*" in object.get(n.config, ["rpc", "cors_allowed_origins"], [])
	f := {
		"id": "HC-AC1-CORS-WILDCARD",
		"msg": sprintf("node %s allows RPC requests from any origin (CORS `*`)", [n.name]),
		"resource": lib.node_resource(n),
		"path": "spec.network.rpc.cors",
	}
}

# METADATA
# title: Kubernetes namespace without a default-deny NetworkPolicy
# description: >-
#   The rendered Kubernetes objects contain no NetworkPolicy that selects every pod (empty
#   podSelector) with policy type Ingress and no ingress rules, so every pod in the cluster can
#   reach the nodes' RPC and P2P ports. Deny. Only checked when Kubernetes manifests are rendered.
# scope: rule
# custom:
#   id: HC-AC1-NETPOL-DEFAULT-DENY
#   control: AC-1
#   hipaa:
#     - 164.312(a)(1)
#   severity: high
#   remediation: >-
#     Render a NetworkPolicy with podSelector {} and policyTypes [Ingress, Egress] in the
#     consortium namespace, then allow only the consortium's own traffic.
deny contains f if {
	count(lib.k8s_objects) > 0
	some ns in rendered_namespaces
	not default_deny_present(ns)
	f := {
		"id": "HC-AC1-NETPOL-DEFAULT-DENY",
		"msg": sprintf("no default-deny ingress NetworkPolicy in namespace %s", [ns]),
		"resource": lib.network_resource,
		"path": "spec.provider.kubernetes.namespace",
	}
}

# The namespace hcops renders into: spec.provider.kubernetes.namespace, else the network's name.
namespace := ns if {
	ns := object.get(input.spec, ["provider", "kubernetes", "namespace"], null)
	is_string(ns)
	ns != ""
} else := input.metadata.name

# Every namespace the rendered objects live in (one per organization that declares its own), else the
# network's one.
rendered_namespaces := nss if {
	nss := {ns |
		some o in lib.k8s_objects
		ns := object.get(o, ["metadata", "namespace"], "")
		ns != ""
	}
	count(nss) > 0
} else := {namespace}

default_deny_present(ns) if {
	some np in lib.k8s_objects
	np.kind == "NetworkPolicy"
	object.get(np, ["metadata", "namespace"], namespace) == ns
	selects_all_pods(object.get(np.spec, "podSelector", {}))
	"Ingress" in object.get(np.spec, "policyTypes", ["Ingress"])
	count(object.get(np.spec, "ingress", [])) == 0
}

selects_all_pods(sel) if {
	count(object.get(sel, "matchLabels", {})) == 0
	count(object.get(sel, "matchExpressions", [])) == 0
}

# METADATA
# title: Prometheus metrics published beyond the host
# description: >-
#   The Prometheus metrics port is published on a non-loopback host address (docker) or exposed
#   by a NodePort/LoadBalancer Service (kubernetes). Metrics reveal the network topology, peers and
#   load; they are needed by the consortium's own monitoring only. Warn, because metrics carry no
#   ePHI.
# scope: rule
# custom:
#   id: HC-AC1-METRICS-PUBLISHED
#   control: AC-1
#   hipaa:
#     - 164.312(a)(1)
#   severity: low
#   remediation: >-
#     Scrape metrics over the internal network, or publish the port on 127.0.0.1 only; use a
#     ClusterIP Service for metrics on Kubernetes.
warn contains f if {
	some p in lib.docker_published
	some port in lib.metrics_ports
	lib.port_matches(p.target, port)
	f := {
		"id": "HC-AC1-METRICS-PUBLISHED",
		"msg": concat("", [p.kind, " ", p.service, " publishes the metrics port ", p.target, " on ", host_label(p.host_ip)]),
		"resource": p.resource,
	}
}

# METADATA
# title: Prometheus metrics exposed outside the cluster
# description: >-
#   A NodePort or LoadBalancer Service exposes the Prometheus metrics port outside the cluster.
#   Warn, like HC-AC1-METRICS-PUBLISHED.
# scope: rule
# custom:
#   id: HC-AC1-METRICS-EXTERNAL-SERVICE
#   control: AC-1
#   hipaa:
#     - 164.312(a)(1)
#   severity: low
#   remediation: Use a ClusterIP Service for metrics and scrape them from inside the cluster.
warn contains f if {
	some svc in lib.k8s_external_services
	lib.k8s_service_exposes_metrics(svc)
	f := {
		"id": "HC-AC1-METRICS-EXTERNAL-SERVICE",
		"msg": sprintf("Service %s of type %s exposes the metrics port outside the cluster", [svc.metadata.name, lib.service_type(svc)]),
		"resource": lib.k8s_resource(svc),
	}
}

# METADATA
# title: Two nodes share a name
# description: >-
#   Node names identify nodes in manifests, keys and audit records; two nodes with the same name
#   cannot be told apart (unique identification). Deny, one finding per repeated node.
# scope: rule
# custom:
#   id: HC-AC2-DUPLICATE-NODE-NAME
#   control: AC-2
#   hipaa:
#     - 164.312(a)(2)(i)
#   severity: high
#   remediation: Give every node in spec.organizations[*].nodes a unique name.
deny contains f if {
	some k
	[name, _, path] := sorted_names[k]
	k > 0
	[prev_name, _, prev_path] := sorted_names[k - 1]
	name == prev_name
	f := {
		"id": "HC-AC2-DUPLICATE-NODE-NAME",
		"msg": sprintf("node name %s is used by more than one node (%s and %s)", [name, prev_path, path]),
		"resource": sprintf("node/%s", [name]),
		"path": sprintf("%s.name", [path]),
	}
}

# Node names and monikers with the node's index and what the findings report, sorted: equal values
# are neighbours, so duplicates are found in one pass (n log n) instead of comparing every pair of
# nodes. The rules read the tuples only: indexing input.nodes again by the bound index makes
# regopy 1.5.2 iterate every node (it hits its statement limit at a few hundred nodes).
sorted_names := sort([[n.name, i, n.path] | some i; n := input.nodes[i]])

sorted_monikers := sort([[n.config.moniker, i, n.name, n.path] | some i; n := input.nodes[i]])

# METADATA
# title: Two nodes share a moniker
# description: >-
#   Two rendered node configurations carry the same CometBFT moniker, the name a node announces to
#   its peers. Deny, one finding per repeated moniker.
# scope: rule
# custom:
#   id: HC-AC2-DUPLICATE-MONIKER
#   control: AC-2
#   hipaa:
#     - 164.312(a)(2)(i)
#   severity: medium
#   remediation: Let every node's moniker default to its (unique) node name.
deny contains f if {
	some k
	[moniker, _, name, path] := sorted_monikers[k]
	k > 0
	[prev_moniker, _, prev_name, _] := sorted_monikers[k - 1]
	moniker == prev_moniker
	f := {
		"id": "HC-AC2-DUPLICATE-MONIKER",
		"msg": sprintf("moniker %s is announced by nodes %s and %s", [moniker, prev_name, name]),
		"resource": sprintf("node/%s", [name]),
		"path": path,
	}
}

# METADATA
# title: One node ID used by several peers
# description: >-
#   The persistent peer lists use the same node ID for more than one address, which means two
#   nodes share a node key (or a peer list points an ID at the wrong host). Node IDs must be
#   unique per node. The input carries no key material, so this is checked on the peer lists.
#   Deny.
# scope: rule
# custom:
#   id: HC-AC2-DUPLICATE-NODE-ID
#   control: AC-2
#   hipaa:
#     - 164.312(a)(2)(i)
#   severity: high
#   remediation: Generate a separate node key for every node and re-render the peer lists.
deny contains f if {
	some id in lib.ids_with_several_addrs
	addrs := {p[1] | some p in lib.peer_pairs; p[0] == id}
	f := {
		"id": "HC-AC2-DUPLICATE-NODE-ID",
		"msg": concat("", [
			"node ID ", id, " is used for ", format_int(count(addrs), 10),
			" peer addresses: ", concat(", ", sort(addrs)),
		]),
		"resource": lib.network_resource,
	}
}

# METADATA
# title: Organization without a break-glass contact in production
# description: >-
#   An organization that runs nodes in the production tier declares no emergency (break-glass)
#   contact, so nobody is named to obtain access to its nodes in an emergency. The emergency access
#   procedure is a Required implementation specification (164.312(a)(2)(ii)): deny in production;
#   see HC-AC3-BREAK-GLASS-MISSING for other tiers.
# scope: rule
# custom:
#   id: HC-AC3-BREAK-GLASS-MISSING-PROD
#   control: AC-3
#   hipaa:
#     - 164.312(a)(2)(ii)
#   severity: high
#   remediation: >-
#     Set spec.organizations[*].contact.breakGlass to an on-call address or role (in the base spec
#     or the production overlay).
deny contains f if {
	lib.is_prod
	some o in orgs_without_break_glass
	f := {
		"id": "HC-AC3-BREAK-GLASS-MISSING-PROD",
		"msg": sprintf("organization %s runs %d node(s) in production but declares no break-glass contact", [o.name, o.nodeCount]),
		"resource": lib.org_resource(o),
		"path": sprintf("%s.contact.breakGlass", [o.path]),
	}
}

# METADATA
# title: Organization without a break-glass contact
# description: >-
#   Outside production (or with no tier), an organization that runs nodes and declares no emergency
#   (break-glass) contact is reported without stopping the release, so the gap is visible before
#   promotion (164.312(a)(2)(ii)). Warn; see HC-AC3-BREAK-GLASS-MISSING-PROD.
# scope: rule
# custom:
#   id: HC-AC3-BREAK-GLASS-MISSING
#   control: AC-3
#   hipaa:
#     - 164.312(a)(2)(ii)
#   severity: medium
#   remediation: Set spec.organizations[*].contact.breakGlass to an on-call address or role.
warn contains f if {
	not lib.is_prod
	some o in orgs_without_break_glass
	f := {
		"id": "HC-AC3-BREAK-GLASS-MISSING",
		"msg": sprintf("organization %s runs %d node(s) but declares no break-glass contact", [o.name, o.nodeCount]),
		"resource": lib.org_resource(o),
		"path": sprintf("%s.contact.breakGlass", [o.path]),
	}
}

orgs_without_break_glass contains o if {
	some o in input.organizations
	o.nodeCount > 0
	not has_break_glass(o)
}

has_break_glass(o) if {
	bg := object.get(o, ["contact", "breakGlass"], "")
	is_string(bg)
	trim_space(bg) != ""
}

# METADATA
# title: Node storage not encrypted
# description: >-
#   The node's data volume is not encrypted at rest (storage.encrypted is not true). Block data
#   and state are ePHI-adjacent; encryption at rest is the addressable specification
#   164.312(a)(2)(iv) and a requirement of the proposed rule. Deny.
# scope: rule
# custom:
#   id: HC-AC5-STORAGE-UNENCRYPTED
#   control: AC-5
#   hipaa:
#     - 164.312(a)(2)(iv)
#   severity: high
#   remediation: >-
#     Set storage.encrypted: true (spec.defaults.storage or the node) and use an encrypting
#     storage class or volume driver.
deny contains f if {
	some n in input.nodes
	not object.get(n, ["storage", "encrypted"], false) == true
	f := {
		"id": "HC-AC5-STORAGE-UNENCRYPTED",
		"msg": sprintf("node %s stores its data on an unencrypted volume", [n.name]),
		"resource": lib.node_resource(n),
		"path": sprintf("%s.storage.encrypted", [n.path]),
	}
}

# METADATA
# title: Key material in an environment variable
# description: >-
#   A compose service, Docker node container or Kubernetes container sets an environment variable
#   whose name contains KEY or SECRET to a literal value. Environment variables leak through `docker inspect`, the API
#   server, crash dumps and child processes; keys belong in Secrets or 0600 files. Names ending in
#   _FILE, _PATH or _DIR (pointers to a mounted file) are accepted. Deny.
# scope: rule
# custom:
#   id: HC-AC5-KEY-IN-ENV
#   control: AC-5
#   hipaa:
#     - 164.312(a)(2)(iv)
#   severity: high
#   remediation: >-
#     Mount the key from a Secret (Kubernetes) or a docker secret / 0600 file and pass its path
#     in a *_FILE variable instead.
deny contains f if {
	some e in lib.env_literals
	f := {
		"id": "HC-AC5-KEY-IN-ENV",
		"msg": concat("", [e.resource, " sets ", e.name, " to a literal value in its environment"]),
		"resource": e.resource,
	}
}

# METADATA
# title: Key file in a ConfigMap
# description: >-
#   A ConfigMap carries priv_validator_key.json or node_key.json (or a value holding a priv_key),
#   so the private key is stored unencrypted and readable by anyone allowed to read ConfigMaps.
#   Deny.
# scope: rule
# custom:
#   id: HC-AC5-KEY-IN-CONFIGMAP
#   control: AC-5
#   hipaa:
#     - 164.312(a)(2)(iv)
#   severity: high
#   remediation: Move the key files into a Secret mounted with mode 0600.
deny contains f if {
	some cm in lib.k8s_objects
	cm.kind == "ConfigMap"
	some key in configmap_key_entries(cm)
	f := {
		"id": "HC-AC5-KEY-IN-CONFIGMAP",
		"msg": sprintf("ConfigMap %s holds key material in entry %s", [cm.metadata.name, key]),
		"resource": lib.k8s_resource(cm),
	}
}

key_files := ["priv_validator_key.json", "node_key.json"]

configmap_fields := ["data", "binaryData"]

configmap_key_entries(cm) := {key |
	some field in configmap_fields
	entries := object.get(cm, field, {})
	some key
	value := entries[key]
	key_entry(key, value)
}

key_entry(key, _) if {
	some name in key_files
	endswith(key, name)
}

# The JSON key files hold a "priv_key" member. Matched without the quotes: regopy 1.5.2 keeps the
# JSON escapes of input strings (\"priv_key\"), so a quoted pattern would never match there.
key_entry(_, value) if {
	is_string(value)
	contains(value, "priv_key")
}

# Shared helpers for the built-in HIPAA gate policies.
#
# This package holds no deny/warn rules of its own. It only reads the input document described in
# docs/policy-input.md and turns the rendered manifests into flat, engine-neutral facts
# (published ports, containers, environment variables) that the family packages check.
#
# Engine notes (regopy 1.5.2 and OPA must agree, see policies/README.md):
#   - no rego.metadata.*, no net.cidr_contains;
#   - regex.match is only used as a positive condition (regopy yields undefined, OPA false);
#   - concat() is only given sorted arrays (regopy keeps set insertion order, OPA sorts);
#   - object.union is not used on nested objects (regopy does not merge recursively);
#   - functions that could see several matching values return sets, never conflicting values;
#   - regopy 1.5.2 bugs avoided: `some k, v in xs` inside array/set comprehensions (parse error
#     "Invalid collection"); comprehension heads that mention a function argument (wrong, stale
#     results when the function is called twice); sprintf("%s", [arg]) where arg is a function
#     argument that was a string literal at the call site, or a string computed by a built-in
#     such as concat, lower or sprintf (the result keeps the quotes): messages that include such
#     strings are built with concat() instead.
package hcops.hipaa.lib

import rego.v1

network_name := object.get(input, ["metadata", "name"], "unnamed")

network_resource := sprintf("network/%s", [network_name])

node_resource(n) := sprintf("node/%s", [n.name])

org_resource(o) := sprintf("org/%s", [o.name])

docker_resource(name) := concat("/", ["manifest/docker/service", name])

k8s_resource(obj) := sprintf("manifest/kubernetes/%s/%s", [obj.kind, object.get(obj, ["metadata", "name"], "unnamed")])

# ---------------------------------------------------------------------------------------------
# Spec settings, with fail-closed defaults where a missing value would otherwise hide a finding.

exposure := object.get(input.spec, ["network", "rpc", "exposure"], "public")

rpc_tls if object.get(input.spec, ["network", "rpc", "tls"], false) == true

phi_on_chain := object.get(input.spec, ["data", "phiOnChain"], "allowed")

# Production is what the input's tier says (spec.tier, or derived by hcops from a plain environment
# name such as prod); input.environment is a display name and may be anything ("./prod", "Prod-EU").
is_prod if input.tier == "production"

# An input document without a tier key (written before input.tier existed, or by hand) falls back on
# the environment name, as before. hcops always sets the key, to null when the tier is unspecified.
is_prod if {
	not has_tier
	is_string(input.environment)
	lower(input.environment) in {"prod", "production"}
}

has_tier if "tier" in object.keys(input)

# ---------------------------------------------------------------------------------------------
# Ports and addresses.

# port_of_addr("tcp://0.0.0.0:26657") == "26657"; "unix://..." and addresses without a port yield
# nothing.
port_of_addr(addr) := p if {
	is_string(addr)
	not startswith(addr, "unix://")
	parts := split(addr, ":")
	count(parts) > 1
	p := parts[count(parts) - 1]
	regex.match(`^[0-9]+$`, p)
}

# host_of_addr("tcp://127.0.0.1:26657") == "127.0.0.1"; ":26660" gives "" (all interfaces).
host_of_addr(addr) := h if {
	is_string(addr)
	rest := trim_prefix(trim_prefix(addr, "tcp://"), "http://")
	parts := split(rest, ":")
	h := concat(":", array.slice(parts, 0, count(parts) - 1))
}

loopback_host(h) if h in {"127.0.0.1", "localhost", "::1", "[::1]"}

loopback_host(h) if startswith(h, "127.")

# The container ports serving RPC and Prometheus metrics, taken from every node's rendered config
# plus the CometBFT defaults.
rpc_ports := {p | some n in input.nodes; p := port_of_addr(n.config.rpc.laddr)} | {"26657"}

metrics_ports := {p |
	some n in input.nodes
	p := port_of_addr(object.get(n.config, ["instrumentation", "prometheus_listen_addr"], ""))
} | {"26660"}

# A port number or string as a string: 26657 -> "26657".
port_string(x) := x if is_string(x)

port_string(x) := format_int(x, 10) if is_number(x)

# port_matches(target, port): target is "26657", "26650-26660" or a number.
port_matches(target, port) if port_string(target) == port

port_matches(target, port) if {
	bounds := split(port_string(target), "-")
	count(bounds) == 2
	regex.match(`^[0-9]+$`, bounds[0])
	regex.match(`^[0-9]+$`, bounds[1])
	regex.match(`^[0-9]+$`, port)
	to_number(bounds[0]) <= to_number(port)
	to_number(port) <= to_number(bounds[1])
}

# ---------------------------------------------------------------------------------------------
# Docker compose.

docker_services := object.get(input, ["manifests", "docker", "services"], {})

# Every entry of a service's `ports:` publishes a container port on the host. Short syntax:
# "26657", "26657:26657", "127.0.0.1:26657:26657", "[::1]:26657:26657", with optional "/tcp";
# numbers; long syntax {"target": 26657, "published": "26657", "host_ip": "127.0.0.1"}.
docker_port(p) := {"host_ip": "", "target": port_string(p)} if is_number(p)

docker_port(p) := {"host_ip": host, "target": parts[count(parts) - 1]} if {
	is_string(p)
	parts := split(split(p, "/")[0], ":")
	host := concat(":", array.slice(parts, 0, count(parts) - 2))
}

docker_port(p) := {"host_ip": object.get(p, "host_ip", ""), "target": port_string(p.target)} if is_object(p)

# The node container documents the Docker provider creates from (hcops.render.docker_doc): one per
# node, with the fields compose renders too (user, cap_drop, security_opt, ports with host addresses...).
docker_containers := object.get(input, ["manifests", "dockerContainers"], [])

docker_container_resource(name) := concat("/", ["manifest/docker/container", name])

# Published ports of docker services and of node container documents that are reachable beyond the
# host's loopback interface. `service` names the compose service or the container; `node` the node
# whose config.toml the published port serves (a compose node service is named after its node).
docker_published contains {
	"kind": "service", "service": name, "node": name, "resource": docker_resource(name),
	"host_ip": e.host_ip, "target": e.target, "raw": p,
} if {
	some name, svc in docker_services
	some p in object.get(svc, "ports", [])
	e := docker_port(p)
	not loopback_host(e.host_ip)
}

docker_published contains {
	"kind": "container", "service": c.name, "node": object.get(c, "node", ""),
	"resource": docker_container_resource(c.name),
	"host_ip": object.get(p, "host_ip", ""), "target": port_string(p.container_port), "raw": p,
} if {
	some c in docker_containers
	some p in object.get(c, "ports", [])
	not loopback_host(object.get(p, "host_ip", ""))
}

# Every Docker workload, compose service or container document, with the hardening facts the rules
# read (not the whole object: see k8s_containers).
docker_workloads contains {
	"kind": "service", "name": name, "resource": docker_resource(name),
	"user": object.get(svc, "user", ""), "privileged": object.get(svc, "privileged", false),
	"read_only": object.get(svc, "read_only", false), "cap_drop": object.get(svc, "cap_drop", []),
	"cap_add": object.get(svc, "cap_add", []), "security_opt": object.get(svc, "security_opt", []),
} if {
	some name, svc in docker_services
}

docker_workloads contains {
	"kind": "container", "name": c.name, "resource": docker_container_resource(c.name),
	"user": object.get(c, "user", ""), "privileged": object.get(c, "privileged", false),
	"read_only": object.get(c, "read_only", false), "cap_drop": object.get(c, "cap_drop", []),
	"cap_add": object.get(c, "cap_add", []), "security_opt": object.get(c, "security_opt", []),
} if {
	some c in docker_containers
}

# A node's rendered config.toml serves its RPC over TLS only: both files set (CometBFT then serves
# HTTPS and nothing else on rpc.laddr).
config_tls(n) if {
	cert := object.get(n.config, ["rpc", "tls_cert_file"], "")
	key := object.get(n.config, ["rpc", "tls_key_file"], "")
	is_string(cert)
	is_string(key)
	cert != ""
	key != ""
}

# Names of the nodes whose rendered config.toml serves TLS.
tls_nodes := {n.name | some n in input.nodes; config_tls(n)}

# Environment variables with a literal value: list form ["NAME=value"] and map form {NAME: value}
# (compose), or the map of a container document. Called only where an environment is present: asking
# every service for an absent one costs as much as the rest of the rule at 1,000 nodes.
docker_env(env) := {[name, value] |
	some entry in env
	is_string(entry)
	i := indexof(entry, "=")
	i > 0
	name := substring(entry, 0, i)
	value := substring(entry, i + 1, -1)
} if is_array(env)

docker_env(env) := {pair |
	some name
	value := env[name]
	value != null
	pair := [name, sprintf("%v", [value])]
} if is_object(env)

# ---------------------------------------------------------------------------------------------
# Kubernetes.

k8s_objects := object.get(input, ["manifests", "kubernetes"], [])

# The kinds pod_spec knows: asked first, a set lookup, so that the other objects (a ConfigMap and a Service
# per node) are not put through pod_spec's three definitions.
template_kinds := {"StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Job"}

pod_kinds := template_kinds | {"Pod", "CronJob"}

pod_spec(obj) := obj.spec if obj.kind == "Pod"

pod_spec(obj) := obj.spec.template.spec if obj.kind in template_kinds

pod_spec(obj) := obj.spec.jobTemplate.spec.template.spec if obj.kind == "CronJob"

# Every container of every workload, init containers included: only the facts the rules read
# (the owning object's kind, name and resource; the container's name, environment and read-only
# root flag), never the whole object, which would be copied and hashed once per container.
k8s_containers contains x if {
	some obj in k8s_objects
	obj.kind in pod_kinds
	ps := pod_spec(obj)
	resource := k8s_resource(obj)
	psc := object.get(ps, "securityContext", {})
	some field in ["initContainers", "containers"]
	some c in object.get(ps, field, [])
	sc := object.get(c, "securityContext", {})
	x := {
		"kind": obj.kind,
		"object": object.get(obj, ["metadata", "name"], "unnamed"),
		"resource": resource,
		"name": object.get(c, "name", ""),
		"env": object.get(c, "env", []),
		"readOnlyRootFilesystem": object.get(sc, "readOnlyRootFilesystem", false),
		"privileged": object.get(sc, "privileged", false),
		"allowPrivilegeEscalation": object.get(sc, "allowPrivilegeEscalation", null),
		# The container's setting wins over the pod's, as the kubelet applies them.
		"runAsNonRoot": object.get(sc, "runAsNonRoot", object.get(psc, "runAsNonRoot", null)),
		"runAsUser": object.get(sc, "runAsUser", object.get(psc, "runAsUser", null)),
		"capDrop": object.get(sc, ["capabilities", "drop"], []),
		"capAdd": object.get(sc, ["capabilities", "add"], []),
		"seccomp": object.get(sc, ["seccompProfile", "type"], object.get(psc, ["seccompProfile", "type"], null)),
	}
}

# Every workload's pod template: the pod-level facts the rules read.
k8s_pods contains x if {
	some obj in k8s_objects
	obj.kind in pod_kinds
	ps := pod_spec(obj)
	x := {
		"kind": obj.kind,
		"object": object.get(obj, ["metadata", "name"], "unnamed"),
		"namespace": object.get(obj, ["metadata", "namespace"], ""),
		"resource": k8s_resource(obj),
		"automountServiceAccountToken": object.get(ps, "automountServiceAccountToken", null),
	}
}

# A Service port serves `ports` if its port/targetPort is one of them or it is named like `names`.
service_port_serves(sp, ports, _) if port_string(object.get(sp, "port", "")) in ports

service_port_serves(sp, ports, _) if port_string(object.get(sp, "targetPort", "")) in ports

service_port_serves(sp, _, names) if object.get(sp, "name", "") in names

service_port_serves(sp, _, names) if object.get(sp, "targetPort", "") in names

service_type(svc) := object.get(svc, ["spec", "type"], "ClusterIP")

# Services of type NodePort/LoadBalancer make their ports reachable from outside the cluster.
k8s_external_services contains svc if {
	some svc in k8s_objects
	svc.kind == "Service"
	service_type(svc) in {"NodePort", "LoadBalancer"}
}

k8s_service_exposes_rpc(svc) if {
	some sp in object.get(svc.spec, "ports", [])
	service_port_serves(sp, rpc_ports, {"rpc"})
}

k8s_service_exposes_metrics(svc) if {
	some sp in object.get(svc.spec, "ports", [])
	service_port_serves(sp, metrics_ports, {"metrics", "prometheus"})
}

# ---------------------------------------------------------------------------------------------
# Environment variables that look like key material: the name contains KEY or SECRET and the value
# is a literal. Names ending in _FILE, _PATH or _DIR point at a mounted file and are not material.
sensitive_env_name(name) if {
	u := upper(name)
	some word in ["KEY", "SECRET"]
	contains(u, word)
	not reference_env_name(u)
}

reference_env_name(u) if {
	some suffix in ["_FILE", "_PATH", "_DIR"]
	endswith(u, suffix)
}

# Literal sensitive environment variables in compose services, Docker node containers and Kubernetes
# containers.
env_literals contains {"resource": docker_resource(name), "name": pair[0]} if {
	some name, svc in docker_services
	some pair in docker_env(svc.environment)
	sensitive_env_name(pair[0])
	trim_space(pair[1]) != ""
}

env_literals contains {"resource": docker_container_resource(c.name), "name": pair[0]} if {
	some c in docker_containers
	some pair in docker_env(c.env)
	sensitive_env_name(pair[0])
	trim_space(pair[1]) != ""
}

env_literals contains {"resource": x.resource, "name": e.name} if {
	some x in k8s_containers
	some e in x.env
	sensitive_env_name(e.name)
	v := object.get(e, "value", "")
	trim_space(sprintf("%v", [v])) != ""
}

# ---------------------------------------------------------------------------------------------
# Persistent peers: "id@host:port,id@host:port" -> the distinct [<id>, <host:port>] pairs of every
# node's list (ids lowercased). A set of pairs, not one entry per node and peer: with every node
# listing the same peers the set stays as small as the network.
peer_pairs contains [lower(parts[0]), parts[1]] if {
	some entry in peer_entries
	entry != ""
	parts := split(entry, "@")
	count(parts) == 2
}

# The distinct entries of all lists, from one string: split and trimmed once per entry, and each distinct
# entry parsed once (every node lists nearly the same peers). Nodes without a list add empty entries only.
peer_entries := {trim_space(raw) |
	some raw in split(concat(",", [object.get(n.config, ["p2p", "persistent_peers"], "") | some n in input.nodes]), ",")
}

# The node IDs listed with more than one address: the distinct pairs sorted, so that the pairs of
# one ID are neighbours. (The set goes through an array first: regopy 1.5.2 iterates sort(<set>)
# by value instead of by index.)
sorted_peer_pairs := sort([p | some p in peer_pairs])

ids_with_several_addrs contains id if {
	some i
	[id, _] := sorted_peer_pairs[i]
	i > 0
	[prev_id, _] := sorted_peer_pairs[i - 1]
	prev_id == id
}

# The nodes that set their own image, as [org, name] (one pass over the spec, not one per node).
nodes_with_own_image contains [o.name, sn.name] if {
	some o in input.spec.organizations
	some sn in o.nodes
	object.get(sn, "image", null) != null
}

# The spec field a node's image comes from: the node's own `image` if it sets one, else the chain's.
image_path(n) := sprintf("%s.image", [n.path]) if {
	[n.org, n.name] in nodes_with_own_image
} else := "spec.chain.image"

package hcops.hipaa.hardening_test

import rego.v1

import data.hcops.hipaa.hardening as policy
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

sts := "manifest/kubernetes/StatefulSet/stmary-val-0"

test_example_passes if {
	count(denies(td.example)) == 0
}

# --- Kubernetes

test_k8s_privileged_fires if {
	some f in td.with_id(denies(td.violations["HC-IN1-K8S-PRIVILEGED"]), "HC-IN1-K8S-PRIVILEGED")
	f.resource == sts
}

test_k8s_privileged_passes_when_false if {
	doc := patched([{"op": "add", "path": "/manifests/kubernetes/4/spec/template/spec/containers/0/securityContext/privileged", "value": false}])
	count(denies(doc)) == 0
}

test_k8s_privilege_escalation_fires if {
	some f in td.with_id(denies(td.violations["HC-IN1-K8S-PRIVILEGE-ESCALATION"]), "HC-IN1-K8S-PRIVILEGE-ESCALATION")
	f.resource == sts
	contains(f.msg, "init-home")
}

test_k8s_privilege_escalation_fires_when_true if {
	doc := patched([{"op": "add", "path": "/manifests/kubernetes/4/spec/template/spec/containers/0/securityContext/allowPrivilegeEscalation", "value": true}])
	"HC-IN1-K8S-PRIVILEGE-ESCALATION" in td.ids(denies(doc))
}

test_k8s_run_as_root_fires if {
	some f in td.with_id(denies(td.violations["HC-IN1-K8S-RUN-AS-ROOT"]), "HC-IN1-K8S-RUN-AS-ROOT")
	f.resource == sts
}

test_k8s_run_as_root_fires_for_uid_0 if {
	doc := patched([{"op": "add", "path": "/manifests/kubernetes/4/spec/template/spec/containers/0/securityContext/runAsUser", "value": 0}])
	"HC-IN1-K8S-RUN-AS-ROOT" in td.ids(denies(doc))
}

# The pod's runAsNonRoot covers a container that does not set its own.
test_k8s_run_as_root_passes_with_the_pod_setting if {
	doc := patched([{"op": "remove", "path": "/manifests/kubernetes/4/spec/template/spec/containers/0/securityContext/runAsNonRoot"}])
	count(denies(doc)) == 0
}

test_k8s_capabilities_fire if {
	some f in td.with_id(denies(td.violations["HC-IN1-K8S-CAPABILITIES"]), "HC-IN1-K8S-CAPABILITIES")
	f.resource == sts
	added := patched([{"op": "add", "path": "/manifests/kubernetes/4/spec/template/spec/containers/0/securityContext/capabilities", "value": {"drop": ["ALL"], "add": ["NET_ADMIN"]}}])
	"HC-IN1-K8S-CAPABILITIES" in td.ids(denies(added))
}

test_k8s_seccomp_fires if {
	some f in td.with_id(denies(td.violations["HC-IN1-K8S-SECCOMP"]), "HC-IN1-K8S-SECCOMP")
	f.resource == sts
	unconfined := patched([{"op": "add", "path": "/manifests/kubernetes/4/spec/template/spec/containers/0/securityContext/seccompProfile", "value": {"type": "Unconfined"}}])
	"HC-IN1-K8S-SECCOMP" in td.ids(denies(unconfined))
}

test_k8s_seccomp_passes_on_the_container if {
	doc := json.patch(td.violations["HC-IN1-K8S-SECCOMP"], [
		{"op": "add", "path": "/manifests/kubernetes/4/spec/template/spec/containers/0/securityContext/seccompProfile", "value": {"type": "RuntimeDefault"}},
		{"op": "add", "path": "/manifests/kubernetes/4/spec/template/spec/initContainers/0/securityContext/seccompProfile", "value": {"type": "Localhost", "localhostProfile": "cometbft.json"}},
	])
	count(denies(doc)) == 0
}

test_k8s_sa_token_fires if {
	some f in td.with_id(denies(td.violations["HC-IN1-K8S-SA-TOKEN"]), "HC-IN1-K8S-SA-TOKEN")
	f.resource == sts
	mounted := patched([{"op": "add", "path": "/manifests/kubernetes/4/spec/template/spec/automountServiceAccountToken", "value": true}])
	"HC-IN1-K8S-SA-TOKEN" in td.ids(denies(mounted))
}

test_k8s_pod_security_fires if {
	some f in td.with_id(denies(td.violations["HC-IN1-K8S-POD-SECURITY"]), "HC-IN1-K8S-POD-SECURITY")
	f.resource == "manifest/kubernetes/Namespace/regional-health-net"
}

test_k8s_pod_security_fires_without_a_namespace_object if {
	doc := patched([{"op": "remove", "path": "/manifests/kubernetes/17"}])
	td.ids(denies(doc)) == {"HC-IN1-K8S-POD-SECURITY"}
}

# --- Docker

test_docker_capabilities_fire if {
	some f in td.with_id(denies(td.violations["HC-IN1-DOCKER-CAPABILITIES"]), "HC-IN1-DOCKER-CAPABILITIES")
	f.resource == "manifest/docker/service/stmary-val-0"
	added := patched([{"op": "add", "path": "/manifests/dockerContainers/2/cap_add", "value": ["SYS_ADMIN"]}])
	some g in td.with_id(denies(added), "HC-IN1-DOCKER-CAPABILITIES")
	g.resource == "manifest/docker/container/regional-health-net-bluecross-val-0"
}

test_docker_new_privileges_fires if {
	some f in td.with_id(denies(td.violations["HC-IN1-DOCKER-NEW-PRIVILEGES"]), "HC-IN1-DOCKER-NEW-PRIVILEGES")
	f.resource == "manifest/docker/container/regional-health-net-stmary-val-0"
}

test_docker_new_privileges_spellings_pass if {
	doc := patched([
		{"op": "add", "path": "/manifests/docker/services/stmary-val-0/security_opt", "value": ["no-new-privileges"]},
		{"op": "add", "path": "/manifests/dockerContainers/0/security_opt", "value": ["seccomp=default", "no-new-privileges=true"]},
	])
	count(denies(doc)) == 0
}

test_docker_root_user_fires if {
	some f in td.with_id(denies(td.violations["HC-IN1-DOCKER-ROOT-USER"]), "HC-IN1-DOCKER-ROOT-USER")
	f.resource == "manifest/docker/service/stmary-val-0"
	missing := patched([{"op": "remove", "path": "/manifests/dockerContainers/3/user"}])
	"HC-IN1-DOCKER-ROOT-USER" in td.ids(denies(missing))
	named := patched([{"op": "add", "path": "/manifests/docker/services/cityrx-val-0/user", "value": "root"}])
	"HC-IN1-DOCKER-ROOT-USER" in td.ids(denies(named))
}

test_docker_privileged_fires if {
	some f in td.with_id(denies(td.violations["HC-IN1-DOCKER-PRIVILEGED"]), "HC-IN1-DOCKER-PRIVILEGED")
	f.resource == "manifest/docker/container/regional-health-net-northside-val-0"
}

# HIPAA Security Rule 164.312(c)(1) integrity (catalogue IN-1): the node containers run with least
# privilege, judged on the rendered output (what would be deployed), never on the spec: a hand-edited
# or stale manifest is caught like a renderer bug.
#
# Kubernetes: every container of every workload (init containers included) is unprivileged, cannot
# gain privileges, runs as non-root, drops every capability and uses the RuntimeDefault (or a
# Localhost) seccomp profile; pods do not mount a service account token; the namespace enforces the
# `restricted` Pod Security Standard. Docker: every compose service and node container document
# (manifests.dockerContainers, what `hcops apply` creates) drops every capability, sets
# no-new-privileges, runs as a non-root user and is not privileged.
package hcops.hipaa.hardening

import rego.v1

import data.hcops.hipaa.lib

# ---------------------------------------------------------------------------------------------
# Kubernetes.

# METADATA
# title: Privileged container (kubernetes)
# description: >-
#   A container sets securityContext.privileged: true and so holds every capability and every host
#   device: a compromised node process could read other workloads' data. Deny.
# scope: rule
# custom:
#   id: HC-IN1-K8S-PRIVILEGED
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: high
#   remediation: Remove securityContext.privileged (or set it to false) on every container.
deny contains f if {
	some x in lib.k8s_containers
	x.privileged == true
	f := {
		"id": "HC-IN1-K8S-PRIVILEGED",
		"msg": sprintf("container %s of %s %s is privileged", [x.name, x.kind, x.object]),
		"resource": x.resource,
	}
}

# METADATA
# title: Privilege escalation allowed (kubernetes)
# description: >-
#   A container does not set securityContext.allowPrivilegeEscalation: false, so a setuid binary or
#   file capability can raise its privileges above those it started with. Deny.
# scope: rule
# custom:
#   id: HC-IN1-K8S-PRIVILEGE-ESCALATION
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: high
#   remediation: Set securityContext.allowPrivilegeEscalation to false on every container.
deny contains f if {
	some x in lib.k8s_containers
	not x.allowPrivilegeEscalation == false
	f := {
		"id": "HC-IN1-K8S-PRIVILEGE-ESCALATION",
		"msg": sprintf("container %s of %s %s may escalate its privileges", [x.name, x.kind, x.object]),
		"resource": x.resource,
	}
}

# METADATA
# title: Container may run as root (kubernetes)
# description: >-
#   Neither the container nor its pod sets runAsNonRoot: true, or the container runs as uid 0: an
#   image that runs as root gets root in the container. Deny.
# scope: rule
# custom:
#   id: HC-IN1-K8S-RUN-AS-ROOT
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: high
#   remediation: Set runAsNonRoot true and a non-zero runAsUser (hcops renders uid 10001).
deny contains f if {
	some x in lib.k8s_containers
	may_run_as_root(x)
	f := {
		"id": "HC-IN1-K8S-RUN-AS-ROOT",
		"msg": sprintf("container %s of %s %s may run as root", [x.name, x.kind, x.object]),
		"resource": x.resource,
	}
}

may_run_as_root(x) if not x.runAsNonRoot == true

may_run_as_root(x) if x.runAsUser == 0

# METADATA
# title: Capabilities not all dropped (kubernetes)
# description: >-
#   A container does not drop ALL Linux capabilities, or adds some back: the kernel then grants the
#   node process rights (raw sockets, changing file ownership, ...) it never needs. Deny.
# scope: rule
# custom:
#   id: HC-IN1-K8S-CAPABILITIES
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: high
#   remediation: Set securityContext.capabilities to {drop ["ALL"]} and add none.
deny contains f if {
	some x in lib.k8s_containers
	keeps_capabilities(x.capDrop, x.capAdd)
	f := {
		"id": "HC-IN1-K8S-CAPABILITIES",
		"msg": sprintf("container %s of %s %s keeps Linux capabilities", [x.name, x.kind, x.object]),
		"resource": x.resource,
	}
}

keeps_capabilities(drop, _) if not "ALL" in drop

keeps_capabilities(_, add) if count(add) > 0

# METADATA
# title: No seccomp profile (kubernetes)
# description: >-
#   Neither the container nor its pod sets seccompProfile type RuntimeDefault (or Localhost): the
#   node process may call every system call of the host kernel. Deny.
# scope: rule
# custom:
#   id: HC-IN1-K8S-SECCOMP
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: medium
#   remediation: Set securityContext.seccompProfile.type to RuntimeDefault (pod or container).
deny contains f if {
	some x in lib.k8s_containers
	not x.seccomp in {"RuntimeDefault", "Localhost"}
	f := {
		"id": "HC-IN1-K8S-SECCOMP",
		"msg": sprintf("container %s of %s %s runs without a seccomp profile", [x.name, x.kind, x.object]),
		"resource": x.resource,
	}
}

# METADATA
# title: Service account token mounted (kubernetes)
# description: >-
#   A workload's pods do not set automountServiceAccountToken: false, so every node process gets
#   credentials for the Kubernetes API that it never uses. Deny.
# scope: rule
# custom:
#   id: HC-IN1-K8S-SA-TOKEN
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: medium
#   remediation: Set automountServiceAccountToken to false in the pod template.
deny contains f if {
	some p in lib.k8s_pods
	not p.automountServiceAccountToken == false
	f := {
		"id": "HC-IN1-K8S-SA-TOKEN",
		"msg": sprintf("%s %s mounts a service account token into its pods", [p.kind, p.object]),
		"resource": p.resource,
	}
}

# The namespaces of the rendered workloads, and the Namespace objects that enforce `restricted`.
workload_namespaces := {p.namespace | some p in lib.k8s_pods}

restricted_namespaces contains ns.metadata.name if {
	some ns in lib.k8s_objects
	ns.kind == "Namespace"
	object.get(ns, ["metadata", "labels", "pod-security.kubernetes.io/enforce"], "") == "restricted"
}

# METADATA
# title: Namespace does not enforce the restricted Pod Security Standard (kubernetes)
# description: >-
#   The namespace the workloads run in is not rendered with the label
#   pod-security.kubernetes.io/enforce: restricted, so the API server would admit a pod that breaks
#   any of the checks above (a later edit, another tool). Deny.
# scope: rule
# custom:
#   id: HC-IN1-K8S-POD-SECURITY
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: medium
#   remediation: >-
#     Label the Namespace pod-security.kubernetes.io/enforce: restricted (hcops renders it so in
#     00-namespace.yaml).
deny contains f if {
	some ns in workload_namespaces
	not ns in restricted_namespaces
	f := {
		"id": "HC-IN1-K8S-POD-SECURITY",
		"msg": sprintf("namespace %s does not enforce the restricted Pod Security Standard", [ns]),
		"resource": sprintf("manifest/kubernetes/Namespace/%s", [ns]),
	}
}

# ---------------------------------------------------------------------------------------------
# Docker.

# METADATA
# title: Capabilities not all dropped (docker)
# description: >-
#   A compose service or node container does not set cap_drop [ALL], or adds capabilities back:
#   Docker's default set (chown, setuid, net_raw, ...) stays with the node process. Deny.
# scope: rule
# custom:
#   id: HC-IN1-DOCKER-CAPABILITIES
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: high
#   remediation: Render the service with cap_drop ["ALL"] and no cap_add.
deny contains f if {
	some w in lib.docker_workloads
	keeps_capabilities(w.cap_drop, w.cap_add)
	f := {
		"id": "HC-IN1-DOCKER-CAPABILITIES",
		"msg": concat("", [w.kind, " ", w.name, " keeps Linux capabilities"]),
		"resource": w.resource,
	}
}

# METADATA
# title: no-new-privileges not set (docker)
# description: >-
#   A compose service or node container does not set security_opt no-new-privileges, so a setuid
#   binary can raise the node process's privileges. Deny.
# scope: rule
# custom:
#   id: HC-IN1-DOCKER-NEW-PRIVILEGES
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: high
#   remediation: Render the service with security_opt ["no-new-privileges:true"].
deny contains f if {
	some w in lib.docker_workloads
	not no_new_privileges(w.security_opt)
	f := {
		"id": "HC-IN1-DOCKER-NEW-PRIVILEGES",
		"msg": concat("", [w.kind, " ", w.name, " does not set no-new-privileges"]),
		"resource": w.resource,
	}
}

no_new_privileges(opts) if "no-new-privileges" in opts

no_new_privileges(opts) if "no-new-privileges:true" in opts

no_new_privileges(opts) if "no-new-privileges=true" in opts

# METADATA
# title: Container runs as root (docker)
# description: >-
#   A compose service or node container sets no user, or user root / uid 0: the node process runs
#   as root inside the container. Deny.
# scope: rule
# custom:
#   id: HC-IN1-DOCKER-ROOT-USER
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: high
#   remediation: Render the service with a non-root user (hcops uses "10001:10001").
deny contains f if {
	some w in lib.docker_workloads
	root_user(w.user)
	f := {
		"id": "HC-IN1-DOCKER-ROOT-USER",
		"msg": concat("", [w.kind, " ", w.name, " runs as root"]),
		"resource": w.resource,
	}
}

root_user(u) if not is_string(u)

root_user(u) if {
	is_string(u)
	split(u, ":")[0] in {"", "0", "root"}
}

# METADATA
# title: Privileged container (docker)
# description: >-
#   A compose service or node container sets privileged: true: every capability and host device is
#   given to the node process. Deny.
# scope: rule
# custom:
#   id: HC-IN1-DOCKER-PRIVILEGED
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: high
#   remediation: Remove privileged (or set it to false) from the service.
deny contains f if {
	some w in lib.docker_workloads
	w.privileged == true
	f := {
		"id": "HC-IN1-DOCKER-PRIVILEGED",
		"msg": concat("", [w.kind, " ", w.name, " is privileged"]),
		"resource": w.resource,
	}
}

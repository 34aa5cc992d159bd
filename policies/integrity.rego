# HIPAA Security Rule 164.312(c): integrity and the mechanism to authenticate ePHI (catalogue IN-1).
#
# The software that validates and stores the chain must be exactly the software that was
# reviewed: images are pinned and containers cannot rewrite their own root filesystem.
package hcops.hipaa.integrity

import rego.v1

import data.hcops.hipaa.lib

# A reference without a digest whose tag is missing or `latest` can change under the same name.
mutable_ref(ref) if {
	object.get(ref, "digest", null) == null
	object.get(ref, "tag", null) in {null, "", "latest"}
}

unpinned(ref) if object.get(ref, "digest", null) == null

# METADATA
# title: Image tagged latest or untagged
# description: >-
#   The node image has no tag or the tag `latest` and no digest, so every pull may run different
#   software. Deny in every environment.
# scope: rule
# custom:
#   id: HC-IN1-IMAGE-LATEST
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: high
#   remediation: Use a versioned tag such as cometbft/cometbft:v0.38.17, pinned by digest in prod.
deny contains f if {
	some n in input.nodes
	mutable_ref(n.imageRef)
	f := {
		"id": "HC-IN1-IMAGE-LATEST",
		"msg": sprintf("node %s runs image %s, which is `latest` or untagged", [n.name, n.image]),
		"resource": lib.node_resource(n),
		"path": lib.image_path(n),
	}
}

# METADATA
# title: Image not pinned by digest in production
# description: >-
#   In the production tier every node image must be pinned by digest (image@sha256:...), so the
#   running software is exactly the reviewed one (164.312(c)(2)). Deny in production; see
#   HC-IN1-IMAGE-NO-DIGEST for other environments.
# scope: rule
# custom:
#   id: HC-IN1-IMAGE-NO-DIGEST-PROD
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#     - 164.312(c)(2)
#   severity: high
#   remediation: >-
#     Pin the image in the prod overlay, e.g. spec.chain.image:
#     cometbft/cometbft:v0.38.17@sha256:<digest>.
deny contains f if {
	lib.is_prod
	some n in input.nodes
	unpinned(n.imageRef)
	f := {
		"id": "HC-IN1-IMAGE-NO-DIGEST-PROD",
		"msg": sprintf("node %s runs image %s without a digest in the production tier", [n.name, n.image]),
		"resource": lib.node_resource(n),
		"path": lib.image_path(n),
	}
}

# METADATA
# title: Image not pinned by digest
# description: >-
#   Outside the production tier, an image without a digest is accepted but reported, so
#   the gap is visible before promotion. Warn.
# scope: rule
# custom:
#   id: HC-IN1-IMAGE-NO-DIGEST
#   control: IN-1
#   hipaa:
#     - 164.312(c)(2)
#   severity: low
#   remediation: Pin the image by digest (image@sha256:...) before promoting to prod.
warn contains f if {
	not lib.is_prod
	some n in input.nodes
	unpinned(n.imageRef)
	f := {
		"id": "HC-IN1-IMAGE-NO-DIGEST",
		"msg": sprintf("node %s runs image %s without a digest", [n.name, n.image]),
		"resource": lib.node_resource(n),
		"path": lib.image_path(n),
	}
}

# METADATA
# title: Writable root filesystem (docker)
# description: >-
#   A compose service or node container document does not set `read_only: true`, so a compromised
#   node process can alter the binaries and configuration it runs with. Deny.
# scope: rule
# custom:
#   id: HC-IN1-DOCKER-ROOTFS-WRITABLE
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: medium
#   remediation: >-
#     Render the service with `read_only: true` and tmpfs or volumes for the writable paths.
deny contains f if {
	some w in lib.docker_workloads
	not w.read_only == true
	f := {
		"id": "HC-IN1-DOCKER-ROOTFS-WRITABLE",
		"msg": concat("", [w.kind, " ", w.name, " runs with a writable root filesystem"]),
		"resource": w.resource,
	}
}

# METADATA
# title: Writable root filesystem (kubernetes)
# description: >-
#   A container (init containers included) of a Kubernetes workload does not set
#   securityContext.readOnlyRootFilesystem: true. Deny.
# scope: rule
# custom:
#   id: HC-IN1-K8S-ROOTFS-WRITABLE
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: medium
#   remediation: >-
#     Set securityContext.readOnlyRootFilesystem: true on every container and mount emptyDir or
#     volumes for writable paths.
deny contains f if {
	some x in lib.k8s_containers
	not x.readOnlyRootFilesystem == true
	f := {
		"id": "HC-IN1-K8S-ROOTFS-WRITABLE",
		"msg": sprintf("container %s of %s %s runs with a writable root filesystem", [x.name, x.kind, x.object]),
		"resource": x.resource,
	}
}

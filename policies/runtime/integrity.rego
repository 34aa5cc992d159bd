# Runtime checks of HIPAA 164.312(c) integrity (catalogue IN-1): nodes run the image the spec names,
# its content does not drift, and the root filesystem cannot be changed.
package hcops.runtime.integrity

import rego.v1

import data.hcops.runtime.lib

# METADATA
# title: Running image differs from the spec
# description: >-
#   The image a node's container was created from is not the image the spec gives that node: the
#   running software is not the reviewed release.
# scope: rule
# custom:
#   id: HC-RT-IN1-IMAGE-MISMATCH
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: high
#   remediation: Run `hcops apply` to recreate the node from the spec's image, or change the spec through review.
deny contains f if {
	lib.is_facts
	some n in lib.nodes
	n.present == true
	n.image.reference != ""
	n.image.reference != n.expected.image
	f := {
		"id": "HC-RT-IN1-IMAGE-MISMATCH",
		"msg": sprintf("%s runs image %s, the spec says %s", [n.name, n.image.reference, n.expected.image]),
		"resource": lib.node_resource(n),
		"path": n.path,
	}
}

# METADATA
# title: Image digest drift
# description: >-
#   The content of a node's image is not the content the spec pins (its digest is not among the
#   image's repository digests), nodes given the same image run different content, or the image
#   content changed since the previous sweep without the reference changing.
# scope: rule
# custom:
#   id: HC-RT-IN1-DIGEST-DRIFT
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#     - 164.312(c)(2)
#   severity: high
#   remediation: >-
#     Pin the image by digest in the spec, load exactly that image into the engine and run
#     `hcops apply`; find out how the other content got there.
deny contains f if {
	lib.is_facts
	some n in lib.nodes
	n.present == true
	digest := pinned_digest(n.expected.image)
	not digest_matches(n.image, digest)
	f := {
		"id": "HC-RT-IN1-DIGEST-DRIFT",
		"msg": sprintf("%s runs image content %s, the spec pins %s", [n.name, n.image.id, digest]),
		"resource": lib.node_resource(n),
		"path": n.path,
	}
}

# METADATA
# title: Image digest drift
# description: >-
#   The content of a node's image is not the content the spec pins (its digest is not among the
#   image's repository digests), nodes given the same image run different content, or the image
#   content changed since the previous sweep without the reference changing.
# scope: rule
# custom:
#   id: HC-RT-IN1-DIGEST-DRIFT
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#     - 164.312(c)(2)
#   severity: high
#   remediation: >-
#     Pin the image by digest in the spec, load exactly that image into the engine and run
#     `hcops apply`; find out how the other content got there.
deny contains f if {
	lib.is_facts
	some n in lib.nodes
	n.present == true
	n.image.id != ""
	others := {id | some id in ids_by_reference[n.image.reference]; id != n.image.id}
	count(others) > 0
	f := {
		"id": "HC-RT-IN1-DIGEST-DRIFT",
		"msg": sprintf("%s runs %s as %s while %d other content(s) run under the same reference", [n.name, n.image.reference, n.image.id, count(others)]),
		"resource": lib.node_resource(n),
		"path": n.path,
	}
}

# The image contents (ids) running under each image reference, over all present nodes.
ids_by_reference[ref] contains n.image.id if {
	some n in lib.nodes
	n.present == true
	n.image.id != ""
	ref := n.image.reference
}

# METADATA
# title: Image digest drift
# description: >-
#   The content of a node's image is not the content the spec pins (its digest is not among the
#   image's repository digests), nodes given the same image run different content, or the image
#   content changed since the previous sweep without the reference changing.
# scope: rule
# custom:
#   id: HC-RT-IN1-DIGEST-DRIFT
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#     - 164.312(c)(2)
#   severity: high
#   remediation: >-
#     Pin the image by digest in the spec, load exactly that image into the engine and run
#     `hcops apply`; find out how the other content got there.
deny contains f if {
	lib.is_facts
	some n in lib.nodes
	n.present == true
	n.image.id != ""
	is_string(n.image.previousId)
	n.image.previousId != n.image.id
	n.image.reference == n.expected.image
	f := {
		"id": "HC-RT-IN1-DIGEST-DRIFT",
		"msg": sprintf("%s: the content of %s changed since the previous sweep (%s -> %s)", [n.name, n.image.reference, n.image.previousId, n.image.id]),
		"resource": lib.node_resource(n),
		"path": n.path,
	}
}

pinned_digest(ref) := d if {
	parts := split(ref, "@")
	count(parts) == 2
	d := parts[1]
}

digest_matches(image, digest) if image.id == digest

digest_matches(image, digest) if {
	some rd in object.get(image, "repoDigests", [])
	endswith(rd, sprintf("@%s", [digest]))
}

# METADATA
# title: Root filesystem writable
# description: >-
#   A node's container runs with a writable root filesystem: binaries and configuration outside the
#   data volume can be changed at run time.
# scope: rule
# custom:
#   id: HC-RT-IN1-ROOTFS-WRITABLE
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: high
#   remediation: Run `hcops apply` to recreate the container read-only.
deny contains f if {
	lib.is_facts
	some n in lib.nodes
	n.present == true
	n.readOnlyRootFs == false
	f := {
		"id": "HC-RT-IN1-ROOTFS-WRITABLE",
		"msg": sprintf("%s runs with a writable root filesystem", [n.name]),
		"resource": lib.node_resource(n),
		"path": n.path,
	}
}

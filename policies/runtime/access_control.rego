# Runtime checks of HIPAA 164.312(a) access control on running nodes: RPC publication (catalogue AC-1),
# unique identities (AC-2), key file protection and, in production, encryption at rest (AC-5).
package hcops.runtime.access_control

import rego.v1

import data.hcops.runtime.lib

# METADATA
# title: RPC published beyond its exposure
# description: >-
#   A node's (or an undeclared container's) RPC port is published on a non-loopback host address
#   while spec.network.rpc.exposure is host or internal: anyone who reaches the host can call it.
# scope: rule
# custom:
#   id: HC-RT-AC1-RPC-EXPOSED
#   control: AC-1
#   hipaa:
#     - 164.312(a)(1)
#   severity: high
#   remediation: >-
#     Publish RPC on 127.0.0.1 only (run `hcops apply` to restore the declared container), remove the
#     container that publishes it, or raise spec.network.rpc.exposure deliberately (with TLS).
deny contains f if {
	lib.is_facts
	not lib.published_beyond_host_allowed
	some e in lib.exposed_rpc
	f := {
		"id": "HC-RT-AC1-RPC-EXPOSED",
		"msg": sprintf("%s publishes RPC on %s:%s, beyond the spec's exposure '%s'", [e.name, e.hostIp, e.hostPort, lib.exposure]),
		"resource": e.resource,
		"path": "spec.network.rpc.exposure",
	}
}

# METADATA
# title: Live node identity differs from the spec
# description: >-
#   The node ID or validator address a running node reports over RPC is not the one hcops generated
#   for it: the node runs with keys that are not the consortium's record of it.
# scope: rule
# custom:
#   id: HC-RT-AC2-IDENTITY-MISMATCH
#   control: AC-2
#   hipaa:
#     - 164.312(a)(2)(i)
#   severity: high
#   remediation: >-
#     Find out where the node's keys came from; restore the keys from the state directory with
#     `hcops apply`, or rotate them deliberately and update the state.
deny contains f if {
	lib.is_facts
	some n in lib.nodes
	n.rpc.reachable == true
	is_string(n.rpc.nodeId)
	lower(n.rpc.nodeId) != lower(n.expected.nodeId)
	f := {
		"id": "HC-RT-AC2-IDENTITY-MISMATCH",
		"msg": sprintf("%s reports node ID %s, expected %s", [n.name, n.rpc.nodeId, n.expected.nodeId]),
		"resource": lib.node_resource(n),
		"path": n.path,
	}
}

# METADATA
# title: Live node identity differs from the spec
# description: >-
#   The node ID or validator address a running node reports over RPC is not the one hcops generated
#   for it: the node runs with keys that are not the consortium's record of it.
# scope: rule
# custom:
#   id: HC-RT-AC2-IDENTITY-MISMATCH
#   control: AC-2
#   hipaa:
#     - 164.312(a)(2)(i)
#   severity: high
#   remediation: >-
#     Find out where the node's keys came from; restore the keys from the state directory with
#     `hcops apply`, or rotate them deliberately and update the state.
deny contains f if {
	lib.is_facts
	some n in lib.nodes
	n.role == "validator"
	n.rpc.reachable == true
	is_string(n.rpc.validatorAddress)
	upper(n.rpc.validatorAddress) != upper(n.expected.validatorAddress)
	f := {
		"id": "HC-RT-AC2-IDENTITY-MISMATCH",
		"msg": sprintf("%s signs as validator %s, expected %s", [n.name, n.rpc.validatorAddress, n.expected.validatorAddress]),
		"resource": lib.node_resource(n),
		"path": n.path,
	}
}

# METADATA
# title: Key file not owner-only (0600 or 0400)
# description: >-
#   A key or signing-state file in the node's volume (node_key.json, priv_validator_key.json,
#   priv_validator_state.json) is readable or writable by others than its owner. Read-only 0400 (as
#   Kubernetes mounts key Secrets) is as strict and accepted.
# scope: rule
# custom:
#   id: HC-RT-AC5-KEY-FILE-MODE
#   control: AC-5
#   hipaa:
#     - 164.312(a)(2)(iv)
#   severity: high
#   remediation: >-
#     Restore mode 0600 on the file (`hcops apply` rewrites the node's files with 0600) and find out
#     who changed it.
deny contains f if {
	lib.is_facts
	some n in lib.nodes
	some k in object.get(n, "keyFiles", [])
	k.present == true
	not k.mode in {"0600", "0400"}
	f := {
		"id": "HC-RT-AC5-KEY-FILE-MODE",
		"msg": sprintf("%s: %s has mode %s, expected 0600 (or 0400)", [n.name, k.path, k.mode]),
		"resource": lib.node_resource(n),
		"path": n.path,
	}
}

# METADATA
# title: Key file not owned by the node user
# description: >-
#   A key or signing-state file in the node's volume is owned by another user than the one the node
#   process runs as.
# scope: rule
# custom:
#   id: HC-RT-AC5-KEY-FILE-OWNER
#   control: AC-5
#   hipaa:
#     - 164.312(a)(2)(iv)
#   severity: high
#   remediation: >-
#     Restore the owner to the node user (`hcops apply` rewrites the node's files) and find out who
#     changed it.
deny contains f if {
	lib.is_facts
	some n in lib.nodes
	is_number(n.uid)
	some k in object.get(n, "keyFiles", [])
	k.present == true
	k.uid != n.uid
	f := {
		"id": "HC-RT-AC5-KEY-FILE-OWNER",
		"msg": sprintf("%s: %s is owned by uid %v, the node runs as uid %v", [n.name, k.path, k.uid, n.uid]),
		"resource": lib.node_resource(n),
		"path": n.path,
	}
}

# METADATA
# title: Storage encryption neither measured nor attested in production
# description: >-
#   In the production tier, a node's storage must be known to be encrypted: measured by the sweep
#   (fscrypt or dm-crypt under its Docker volume, or a StorageClass that requests encryption) or
#   stated in an attestation of AC-5. spec storage.encrypted alone is only a declaration.
# scope: rule
# custom:
#   id: HC-RT-AC5-STORAGE-UNVERIFIED
#   control: AC-5
#   hipaa:
#     - 164.312(a)(2)(iv)
#     - 164.310(d)(1)
#   severity: high
#   remediation: >-
#     Put the node's volume on encrypted storage (a LUKS device or an fscrypt-encrypted folder; on
#     Kubernetes a StorageClass that requests encryption), or record in attestations.yaml who checked
#     the encryption of the underlying disks (control AC-5) and when the statement expires.
deny contains f if {
	lib.is_facts
	lib.tier == "production"
	not "AC-5" in lib.attested
	some n in lib.nodes
	object.get(n, ["storage", "encrypted"], null) != true
	f := {
		"id": "HC-RT-AC5-STORAGE-UNVERIFIED",
		"msg": sprintf("%s: storage encryption at rest is neither measured nor attested; the production tier requires one of them", [n.name]),
		"resource": lib.node_resource(n),
		"path": n.path,
	}
}

# Runtime check of HIPAA 164.312(d) person or entity authentication (catalogue PA-1): every peer a
# node is connected to is a consortium node.
package hcops.runtime.authentication

import rego.v1

import data.hcops.runtime.lib

# METADATA
# title: Unknown peer connected
# description: >-
#   A node is connected to a peer whose node ID is not one of the consortium's nodes: an entity the
#   consortium did not authorize takes part in the P2P network.
# scope: rule
# custom:
#   id: HC-RT-PA1-UNKNOWN-PEER
#   control: PA-1
#   hipaa:
#     - 164.312(d)
#   severity: high
#   remediation: >-
#     Find out where the peer runs and disconnect it (restart the node with `hcops apply`; keep
#     pex off and addr_book_strict on so that only persistent peers are dialled).
deny contains f if {
	lib.is_facts
	some n in lib.nodes
	some peer in object.get(n.rpc, "peers", [])
	not peer in lib.consortium_ids # node IDs are lowercase hex; lower() only for the rest
	not lower(peer) in lib.consortium_ids
	f := {
		"id": "HC-RT-PA1-UNKNOWN-PEER",
		"msg": sprintf("%s is connected to peer %s, which is not a consortium node", [n.name, peer]),
		"resource": lib.node_resource(n),
		"path": n.path,
	}
}

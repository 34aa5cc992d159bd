# HIPAA Security Rule 164.312(d): person or entity authentication (catalogue PA-1).
#
# Nodes authenticate each other by node ID (the SecretConnection key). The P2P layer must only
# talk to the consortium's declared nodes: persistent peers by ID, a strict address book and no
# several peers behind one IP. TLS on the RPC endpoint is checked as TS-2 (transmission.rego).
package hcops.hipaa.authentication

import rego.v1

import data.hcops.hipaa.lib

# METADATA
# title: Address book not strict
# description: >-
#   p2p.addr_book_strict = false lets a node accept and gossip non-routable and arbitrary
#   addresses, a launcher default meant for local testnets. Deny.
# scope: rule
# custom:
#   id: HC-PA1-ADDR-BOOK-NOT-STRICT
#   control: PA-1
#   hipaa:
#     - 164.312(d)
#   severity: high
#   remediation: Set spec.network.p2p.addrBookStrict to true.
deny contains f if {
	some n in input.nodes
	object.get(n.config, ["p2p", "addr_book_strict"], true) == false
	f := {
		"id": "HC-PA1-ADDR-BOOK-NOT-STRICT",
		"msg": sprintf("node %s runs with p2p.addr_book_strict = false", [n.name]),
		"resource": lib.node_resource(n),
		"path": "spec.network.p2p.addrBookStrict",
	}
}

# METADATA
# title: Several peers allowed from one IP
# description: >-
#   p2p.allow_duplicate_ip = true lets many peer identities connect from one address, so one host
#   can pose as several consortium members. Deny.
# scope: rule
# custom:
#   id: HC-PA1-DUPLICATE-IP-ALLOWED
#   control: PA-1
#   hipaa:
#     - 164.312(d)
#   severity: high
#   remediation: Set spec.network.p2p.allowDuplicateIp to false.
deny contains f if {
	some n in input.nodes
	object.get(n.config, ["p2p", "allow_duplicate_ip"], false) == true
	f := {
		"id": "HC-PA1-DUPLICATE-IP-ALLOWED",
		"msg": sprintf("node %s runs with p2p.allow_duplicate_ip = true", [n.name]),
		"resource": lib.node_resource(n),
		"path": "spec.network.p2p.allowDuplicateIp",
	}
}

# METADATA
# title: Node without persistent peers
# description: >-
#   In a network of several nodes, a node has no persistent peers, so it is not pinned to the
#   consortium's node IDs: with PEX off it cannot join at all, with PEX on it connects to whatever
#   peers gossip offers. Deny in both cases.
# scope: rule
# custom:
#   id: HC-PA1-PERSISTENT-PEERS-MISSING
#   control: PA-1
#   hipaa:
#     - 164.312(d)
#   severity: high
#   remediation: >-
#     Render p2p.persistent_peers as <node-id>@<host>:26656 for every other consortium node
#     (hcops does this from the spec).
deny contains f if {
	count(input.nodes) > 1
	some n in input.nodes
	trim_space(object.get(n.config, ["p2p", "persistent_peers"], "")) == ""
	f := {
		"id": "HC-PA1-PERSISTENT-PEERS-MISSING",
		"msg": sprintf("node %s has no persistent peers (pex = %v)", [n.name, object.get(n.config, ["p2p", "pex"], true)]),
		"resource": lib.node_resource(n),
	}
}

# METADATA
# title: Peer exchange enabled
# description: >-
#   p2p.pex = true makes nodes learn and dial peers from gossip rather than only the declared
#   consortium nodes. Warn: persistent peers still pin the consortium nodes, but a permissioned
#   network should not need discovery.
# scope: rule
# custom:
#   id: HC-PA1-PEX-ENABLED
#   control: PA-1
#   hipaa:
#     - 164.312(d)
#   severity: medium
#   remediation: Set spec.network.p2p.pex to false.
warn contains f if {
	some n in input.nodes
	object.get(n.config, ["p2p", "pex"], true) == true
	f := {
		"id": "HC-PA1-PEX-ENABLED",
		"msg": sprintf("node %s runs with peer exchange (p2p.pex = true)", [n.name]),
		"resource": lib.node_resource(n),
		"path": "spec.network.p2p.pex",
	}
}

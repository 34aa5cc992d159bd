# Runtime checks that only exist on bare hosts (the ansible provider): the node's systemd unit and its
# hardening, the binary it runs, the host firewall, and whether the node comes back after a reboot. They
# read `nodes[].host`, which only that provider reports (see hcops/providers/ansible/hostfacts.py):
#
#   "host": {
#     "unit": {"name", "installed", "activeState", "subState", "enabled", "restarts", "dropIns", "restartPending"},
#     "hardening": {"user", "noNewPrivileges", "protectSystem", "protectHome", "privateTmp", "privateDevices",
#                   "capabilityBoundingSet": [...], "ambientCapabilities": [...], "readWritePaths": [...]} | null,
#     "dataDir": "/var/lib/cometbft/data",
#     "binary": {"path", "present", "sha256", "version", "expectedVersion", "expectedSha256" | null},
#     "user": {"name", "exists", "uid", "gid"},
#     "listening": [{"address", "port"}],
#     "firewall": {"enabled", "table", "present", "unitActive", "unitEnabled",
#                  "rpc" | "p2p" | "metrics": {"reach": "loopback" | "listed" | "any" | "unknown", "allowed": [...]}}
#   }
#
# What a host shares with a container (key file modes and owners, sockets listening beyond loopback as
# published ports, ProtectSystem=strict as a read-only root) is judged by the other runtime packages.
# Rule ids carry their control's prefix, so that the catalogue's families (HC-RT-AC1-*, HC-RT-IN1-*,
# HC-RT-CP1-*) count them.
package hcops.runtime.host

import rego.v1

import data.hcops.runtime.lib

hosts contains n if {
	some n in lib.nodes
	n.present == true
	is_object(object.get(n, "host", null))
}

# How far each exposure lets RPC be reached through the firewall.
rpc_reach_allowed := {
	"host": {"loopback"},
	"internal": {"loopback"},
	"consortium": {"loopback", "listed"},
	"public": {"loopback", "listed", "any"},
}

protective_home := {"yes", "read-only", "tmpfs"}

# METADATA
# title: Host firewall not loaded
# description: >-
#   The node's nftables table (which limits who reaches its RPC, P2P and metrics ports) is not loaded on
#   its host, or the unit that loads it at boot is not enabled: the ports are as open as the rest of the
#   host's rules leave them.
# scope: rule
# custom:
#   id: HC-RT-AC1-HOST-FIREWALL
#   control: AC-1
#   hipaa:
#     - 164.312(a)(1)
#   severity: high
#   remediation: Run `hcops apply` to load the node's firewall table again, and find out who removed it.
deny contains f if {
	lib.is_facts
	some n in hosts
	fw := n.host.firewall
	fw.enabled == true
	fw.present != true
	f := {
		"id": "HC-RT-AC1-HOST-FIREWALL",
		"msg": sprintf("%s: the firewall table %s is not loaded", [n.name, fw.table]),
		"resource": lib.node_resource(n),
		"path": "spec.provider.ansible.firewall",
	}
}

# METADATA
# title: Host firewall not loaded
# description: >-
#   The node's nftables table (which limits who reaches its RPC, P2P and metrics ports) is not loaded on
#   its host, or the unit that loads it at boot is not enabled: the ports are as open as the rest of the
#   host's rules leave them.
# scope: rule
# custom:
#   id: HC-RT-AC1-HOST-FIREWALL
#   control: AC-1
#   hipaa:
#     - 164.312(a)(1)
#   severity: high
#   remediation: Run `hcops apply` to load the node's firewall table again, and find out who removed it.
deny contains f if {
	lib.is_facts
	some n in hosts
	fw := n.host.firewall
	fw.enabled == true
	fw.unitEnabled != true
	f := {
		"id": "HC-RT-AC1-HOST-FIREWALL",
		"msg": sprintf("%s: the firewall table %s is not loaded at boot (its unit is not enabled)", [n.name, fw.table]),
		"resource": lib.node_resource(n),
		"path": "spec.provider.ansible.firewall",
	}
}

# METADATA
# title: Host firewall wider than the RPC exposure
# description: >-
#   The node's loaded firewall table lets RPC be reached from further than spec.network.rpc.exposure
#   allows (host and internal: the host's loopback only; consortium: the consortium's hosts and the
#   listed networks), or lets anyone reach its P2P or metrics port.
# scope: rule
# custom:
#   id: HC-RT-AC1-HOST-FIREWALL
#   control: AC-1
#   hipaa:
#     - 164.312(a)(1)
#   severity: high
#   remediation: Run `hcops apply` to restore the node's firewall table, and find out who changed it.
deny contains f if {
	lib.is_facts
	some n in hosts
	fw := n.host.firewall
	fw.enabled == true
	fw.present == true
	not fw.rpc.reach in rpc_reach_allowed[lib.exposure]
	f := {
		"id": "HC-RT-AC1-HOST-FIREWALL",
		"msg": sprintf("%s: the firewall lets RPC be reached by %s, beyond the spec's exposure '%s'", [n.name, fw.rpc.reach, lib.exposure]),
		"resource": lib.node_resource(n),
		"path": "spec.network.rpc.exposure",
	}
}

# METADATA
# title: Host firewall wider than the RPC exposure
# description: >-
#   The node's loaded firewall table lets RPC be reached from further than spec.network.rpc.exposure
#   allows (host and internal: the host's loopback only; consortium: the consortium's hosts and the
#   listed networks), or lets anyone reach its P2P or metrics port.
# scope: rule
# custom:
#   id: HC-RT-AC1-HOST-FIREWALL
#   control: AC-1
#   hipaa:
#     - 164.312(a)(1)
#   severity: high
#   remediation: Run `hcops apply` to restore the node's firewall table, and find out who changed it.
deny contains f if {
	lib.is_facts
	some n in hosts
	fw := n.host.firewall
	fw.enabled == true
	fw.present == true
	some port in ["p2p", "metrics"]
	fw[port].reach in {"any", "unknown"}
	f := {
		"id": "HC-RT-AC1-HOST-FIREWALL",
		"msg": sprintf("%s: the firewall lets %s reach the %s port", [n.name, fw[port].reach, port]),
		"resource": lib.node_resource(n),
		"path": "spec.provider.ansible.firewall",
	}
}

# METADATA
# title: Node unit not hardened
# description: >-
#   The systemd unit that runs the node lacks part of the hardening hcops installs: NoNewPrivileges,
#   ProtectSystem=strict, ProtectHome, PrivateTmp, an empty CapabilityBoundingSet, write access to the
#   data folder only, and a user of its own (not root). A compromised node process could then gain
#   privileges or change the host.
# scope: rule
# custom:
#   id: HC-RT-IN1-HOST-UNIT-HARDENING
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#     - 164.308(a)(1)(ii)(B)
#   severity: high
#   remediation: >-
#     Run `hcops apply` to restore the unit (and its drop-ins' effect), then find out who changed it:
#     `systemctl cat <unit>` shows the files in effect.
deny contains f if {
	lib.is_facts
	some p in unit_problems
	f := {
		"id": "HC-RT-IN1-HOST-UNIT-HARDENING",
		"msg": sprintf("%s: %s %s", [p.node.name, p.node.host.unit.name, p.problem]),
		"resource": lib.node_resource(p.node),
		"path": p.node.path,
	}
}

# Rules, not functions: regopy keeps strings that came through function arguments quoted in sprintf.
unit_problems contains {"node": n, "problem": "does not set NoNewPrivileges=yes"} if {
	some n in hardened_hosts
	n.host.hardening.noNewPrivileges != true
}

unit_problems contains {"node": n, "problem": "does not set ProtectSystem=strict"} if {
	some n in hardened_hosts
	n.host.hardening.protectSystem != "strict"
}

unit_problems contains {"node": n, "problem": "does not protect /home (ProtectHome)"} if {
	some n in hardened_hosts
	not n.host.hardening.protectHome in protective_home
}

unit_problems contains {"node": n, "problem": "does not set PrivateTmp=yes"} if {
	some n in hardened_hosts
	n.host.hardening.privateTmp != true
}

unit_problems contains {"node": n, "problem": "keeps capabilities (CapabilityBoundingSet is not empty)"} if {
	some n in hardened_hosts
	count(n.host.hardening.capabilityBoundingSet) > 0
}

unit_problems contains {"node": n, "problem": "grants ambient capabilities"} if {
	some n in hardened_hosts
	count(n.host.hardening.ambientCapabilities) > 0
}

unit_problems contains {"node": n, "problem": "may write outside its data folder (ReadWritePaths)"} if {
	some n in hardened_hosts
	some p in n.host.hardening.readWritePaths
	p != n.host.dataDir
}

unit_problems contains {"node": n, "problem": "runs the node as root"} if {
	some n in hardened_hosts
	n.host.hardening.user in {"", "root", "0"}
}

hardened_hosts contains n if {
	some n in hosts
	is_object(n.host.hardening)
}

# METADATA
# title: Node binary differs from the spec's
# description: >-
#   The CometBFT binary on the host is missing, reports another version than spec.chain.version, or its
#   content is not the binary hcops was given (SHA-256): the running software is not the reviewed release.
# scope: rule
# custom:
#   id: HC-RT-IN1-HOST-BINARY
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: high
#   remediation: Run `hcops apply` to install the binary again, and find out who replaced it.
deny contains f if {
	lib.is_facts
	some n in hosts
	n.host.binary.present != true
	f := {
		"id": "HC-RT-IN1-HOST-BINARY",
		"msg": sprintf("%s: %s is missing", [n.name, n.host.binary.path]),
		"resource": lib.node_resource(n),
		"path": "spec.chain.version",
	}
}

# METADATA
# title: Node binary differs from the spec's
# description: >-
#   The CometBFT binary on the host is missing, reports another version than spec.chain.version, or its
#   content is not the binary hcops was given (SHA-256): the running software is not the reviewed release.
# scope: rule
# custom:
#   id: HC-RT-IN1-HOST-BINARY
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: high
#   remediation: Run `hcops apply` to install the binary again, and find out who replaced it.
deny contains f if {
	lib.is_facts
	some n in hosts
	b := n.host.binary
	b.present == true
	b.version != b.expectedVersion
	f := {
		"id": "HC-RT-IN1-HOST-BINARY",
		"msg": sprintf("%s: %s reports version %v, the spec says %v", [n.name, b.path, b.version, b.expectedVersion]),
		"resource": lib.node_resource(n),
		"path": "spec.chain.version",
	}
}

# METADATA
# title: Node binary differs from the spec's
# description: >-
#   The CometBFT binary on the host is missing, reports another version than spec.chain.version, or its
#   content is not the binary hcops was given (SHA-256): the running software is not the reviewed release.
# scope: rule
# custom:
#   id: HC-RT-IN1-HOST-BINARY
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: high
#   remediation: Run `hcops apply` to install the binary again, and find out who replaced it.
deny contains f if {
	lib.is_facts
	some n in hosts
	b := n.host.binary
	b.present == true
	is_string(b.expectedSha256)
	b.sha256 != b.expectedSha256
	f := {
		"id": "HC-RT-IN1-HOST-BINARY",
		"msg": sprintf("%s: %s has content sha256:%v, hcops installed sha256:%v", [n.name, b.path, b.sha256, b.expectedSha256]),
		"resource": lib.node_resource(n),
		"path": "spec.chain.version",
	}
}

# METADATA
# title: Node does not start at boot
# description: >-
#   The node's systemd unit is not enabled: after the host reboots the node stays down until someone
#   starts it.
# scope: rule
# custom:
#   id: HC-RT-CP1-HOST-NOT-ENABLED
#   control: CP-1
#   hipaa:
#     - 164.308(a)(7)(ii)(B)
#   severity: medium
#   remediation: Run `hcops apply` (it enables the unit), or `systemctl enable <unit>` on the host.
deny contains f if {
	lib.is_facts
	some n in hosts
	n.host.unit.installed == true
	n.host.unit.enabled != true
	f := {
		"id": "HC-RT-CP1-HOST-NOT-ENABLED",
		"msg": sprintf("%s: %s is not enabled: the node will not start after a reboot", [n.name, n.host.unit.name]),
		"resource": lib.node_resource(n),
		"path": n.path,
	}
}

# METADATA
# title: Node runs files it has not loaded
# description: >-
#   The node's binary, config, genesis, keys or unit changed since it started and it was not restarted
#   (an apply was interrupted before its rolling restart): the node does not run what the spec says.
# scope: rule
# custom:
#   id: HC-RT-IN1-HOST-RESTART-PENDING
#   control: IN-1
#   hipaa:
#     - 164.312(c)(1)
#   severity: medium
#   remediation: Run `hcops apply`; it restarts the nodes whose files changed, one at a time.
deny contains f if {
	lib.is_facts
	some n in hosts
	n.host.unit.restartPending == true
	f := {
		"id": "HC-RT-IN1-HOST-RESTART-PENDING",
		"msg": sprintf("%s: %s runs with files that changed since it started", [n.name, n.host.unit.name]),
		"resource": lib.node_resource(n),
		"path": n.path,
	}
}

# Whole-pack tests: the example passes the gate, and every corpus variant triggers its rule.
package hcops.hipaa.gate_test

import rego.v1

import data.hcops.hipaa.access_control
import data.hcops.hipaa.audit
import data.hcops.hipaa.authentication
import data.hcops.hipaa.baa
import data.hcops.hipaa.contingency
import data.hcops.hipaa.hardening
import data.hcops.hipaa.integrity
import data.hcops.hipaa.phi
import data.hcops.hipaa.testdata as td
import data.hcops.hipaa.transmission

# Every finding of the pack (deny and warn) for a whole input document, as {"level", "id"} pairs.
findings(doc) := r if {
	r := all_findings with input.metadata as doc.metadata
		with input.environment as doc.environment
		with input.spec as doc.spec
		with input.organizations as doc.organizations
		with input.nodes as doc.nodes
		with input.chain as doc.chain
		with input.manifests as doc.manifests
}

# Comprehensions, so that a family without warn (or deny) rules contributes nothing.
all_denies := ((((((({f | some f in access_control.deny} | {f | some f in audit.deny}) | {f | some f in authentication.deny}) | {f | some f in baa.deny}) | {f | some f in contingency.deny}) | {f | some f in integrity.deny}) | {f | some f in phi.deny}) | {f | some f in transmission.deny}) | {f | some f in hardening.deny}

all_warns := (((((({f | some f in access_control.warn} | {f | some f in audit.warn}) | {f | some f in authentication.warn}) | {f | some f in baa.warn}) | {f | some f in contingency.warn}) | {f | some f in integrity.warn}) | {f | some f in phi.warn}) | {f | some f in transmission.warn}

all_findings := {["deny", f.id] | some f in all_denies} | {["warn", f.id] | some f in all_warns}

denied(doc) := {x[1] | some x in findings(doc); x[0] == "deny"}

warned(doc) := {x[1] | some x in findings(doc); x[0] == "warn"}

test_example_passes_the_gate_in_prod if {
	denied(td.example) == set()
	warned(td.example) == set()
}

test_example_passes_the_gate_in_dev_with_warnings if {
	denied(td.example_dev) == set()
	warned(td.example_dev) == {"HC-AC3-BREAK-GLASS-MISSING", "HC-IN1-IMAGE-NO-DIGEST"}
}

test_example_without_digest_fails_the_gate_in_prod if {
	denied(td.violations["HC-IN1-IMAGE-NO-DIGEST-PROD"]) == {"HC-IN1-IMAGE-NO-DIGEST-PROD"}
}

test_example_with_all_contacts_has_no_finding if {
	findings(td.example_all_contacts) == set()
}

test_every_variant_triggers_its_rule if {
	missed := {id |
		some id in object.keys(td.violations)
		doc := td.violations[id]
		not id in {x[1] | some x in findings(doc)}
	}
	missed == set()
}

package hcops.hipaa.integrity_test

import rego.v1

import data.hcops.hipaa.integrity as policy
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

warns(doc) := r if {
	r := policy.warn with input.metadata as doc.metadata
		with input.environment as doc.environment
		with input.spec as doc.spec
		with input.organizations as doc.organizations
		with input.nodes as doc.nodes
		with input.chain as doc.chain
		with input.manifests as doc.manifests
}

patched(ops) := json.patch(td.example, ops)

# --- HC-IN1-IMAGE-LATEST

test_image_latest_fires if {
	findings := td.with_id(denies(td.violations["HC-IN1-IMAGE-LATEST"]), "HC-IN1-IMAGE-LATEST")
	count(findings) == 1
	some f in findings
	f.resource == "node/stmary-val-0"
	f.path == "spec.organizations[0].nodes[0].image"
}

test_image_latest_fires_for_untagged_image if {
	doc := patched([
		{"op": "add", "path": "/nodes/1/image", "value": "cometbft/cometbft"},
		{"op": "add", "path": "/nodes/1/imageRef", "value": {"repository": "cometbft/cometbft", "tag": null, "digest": null}},
	])
	some f in td.with_id(denies(doc), "HC-IN1-IMAGE-LATEST")
	f.resource == "node/northside-val-0"
	f.path == "spec.chain.image"
}

test_image_latest_passes if {
	not "HC-IN1-IMAGE-LATEST" in td.ids(denies(td.example))
	not "HC-IN1-IMAGE-LATEST" in td.ids(denies(td.example_dev))
	pinned_latest := patched([{
		"op": "add", "path": "/nodes/0/imageRef/tag", "value": "latest",
	}])
	not "HC-IN1-IMAGE-LATEST" in td.ids(denies(pinned_latest))
}

# --- HC-IN1-IMAGE-NO-DIGEST-PROD

test_image_no_digest_prod_fires if {
	findings := td.with_id(denies(td.violations["HC-IN1-IMAGE-NO-DIGEST-PROD"]), "HC-IN1-IMAGE-NO-DIGEST-PROD")
	count(findings) == 5
	some f in findings
	f.resource == "node/cityrx-val-0"
	f.path == "spec.chain.image"
}

test_image_no_digest_prod_fires_for_production if {
	doc := json.patch(td.violations["HC-IN1-IMAGE-NO-DIGEST-PROD"], [{"op": "add", "path": "/environment", "value": "Production"}])
	"HC-IN1-IMAGE-NO-DIGEST-PROD" in td.ids(denies(doc))
}

test_image_no_digest_prod_passes if {
	not "HC-IN1-IMAGE-NO-DIGEST-PROD" in td.ids(denies(td.example))
	not "HC-IN1-IMAGE-NO-DIGEST-PROD" in td.ids(denies(td.example_dev))
}

# --- HC-IN1-IMAGE-NO-DIGEST

test_image_no_digest_fires if {
	findings := td.with_id(warns(td.violations["HC-IN1-IMAGE-NO-DIGEST"]), "HC-IN1-IMAGE-NO-DIGEST")
	count(findings) == 5
	some f in findings
	f.resource == "node/stmary-val-0"
}

test_image_no_digest_fires_without_environment if {
	doc := json.patch(td.example_dev, [{"op": "add", "path": "/environment", "value": null}])
	"HC-IN1-IMAGE-NO-DIGEST" in td.ids(warns(doc))
	not "HC-IN1-IMAGE-NO-DIGEST-PROD" in td.ids(denies(doc))
}

test_image_no_digest_passes if {
	not "HC-IN1-IMAGE-NO-DIGEST" in td.ids(warns(td.example))
	pinned_dev := patched([{"op": "add", "path": "/environment", "value": "dev"}])
	not "HC-IN1-IMAGE-NO-DIGEST" in td.ids(warns(pinned_dev))
}

# --- HC-IN1-DOCKER-ROOTFS-WRITABLE

test_docker_rootfs_writable_fires if {
	some f in td.with_id(denies(td.violations["HC-IN1-DOCKER-ROOTFS-WRITABLE"]), "HC-IN1-DOCKER-ROOTFS-WRITABLE")
	f.resource == "manifest/docker/service/stmary-val-0"
	not f.path
}

test_docker_rootfs_writable_fires_when_unset if {
	doc := patched([{"op": "remove", "path": "/manifests/docker/services/cityrx-val-0/read_only"}])
	some f in td.with_id(denies(doc), "HC-IN1-DOCKER-ROOTFS-WRITABLE")
	f.resource == "manifest/docker/service/cityrx-val-0"
}

# The node container documents (what `hcops apply` creates) are judged like the compose services.
test_docker_rootfs_writable_fires_for_a_container_document if {
	doc := patched([{"op": "add", "path": "/manifests/dockerContainers/4/read_only", "value": false}])
	some f in td.with_id(denies(doc), "HC-IN1-DOCKER-ROOTFS-WRITABLE")
	f.resource == "manifest/docker/container/regional-health-net-state-obs-0"
	f.msg == "container regional-health-net-state-obs-0 runs with a writable root filesystem"
}

test_docker_rootfs_writable_passes if {
	not "HC-IN1-DOCKER-ROOTFS-WRITABLE" in td.ids(denies(td.example))
}

# --- HC-IN1-K8S-ROOTFS-WRITABLE

test_k8s_rootfs_writable_fires if {
	some f in td.with_id(denies(td.violations["HC-IN1-K8S-ROOTFS-WRITABLE"]), "HC-IN1-K8S-ROOTFS-WRITABLE")
	f.resource == "manifest/kubernetes/StatefulSet/stmary-val-0"
}

test_k8s_rootfs_writable_fires_for_init_container if {
	doc := patched([{"op": "remove", "path": "/manifests/kubernetes/7/spec/template/spec/initContainers/0/securityContext"}])
	some f in td.with_id(denies(doc), "HC-IN1-K8S-ROOTFS-WRITABLE")
	f.resource == "manifest/kubernetes/StatefulSet/northside-val-0"
	contains(f.msg, "init-home")
}

test_k8s_rootfs_writable_fires_for_other_workloads if {
	job := {
		"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "backup"},
		"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "backup", "image": "busybox:1.36"}]}}}}},
	}
	doc := patched([{"op": "add", "path": "/manifests/kubernetes/-", "value": job}])
	some f in td.with_id(denies(doc), "HC-IN1-K8S-ROOTFS-WRITABLE")
	f.resource == "manifest/kubernetes/CronJob/backup"
}

test_k8s_rootfs_writable_passes if {
	not "HC-IN1-K8S-ROOTFS-WRITABLE" in td.ids(denies(td.example))
}

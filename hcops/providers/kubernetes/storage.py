"""Encryption at rest on Kubernetes, as far as the cluster states it: each node's PersistentVolumeClaim,
its StorageClass (the claim's, or the cluster's default) and that class's provisioner and parameters.

hcops cannot read a cloud disk's encryption from inside the cluster; the StorageClass is what asks the
provisioner for it. A class whose parameters request encryption (``encrypted: "true"`` for the AWS EBS and
OpenStack Cinder drivers, a customer-managed key for GCE PD, Azure Disk or EBS) is reported encrypted;
any other class is reported as measured and not stating encryption, which leaves the spec's
``storage.encrypted`` declared only (or attested, by an attestation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hcops.errors import HcopsError
from hcops.providers.kubernetes.api import KubeApi, Obj, Ref
from hcops.providers.kubernetes.objects import Desired, Live, claim_names

DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
# Parameters that request encryption with a value that turns it on ("" = any non-empty value).
ENCRYPTION_PARAMETERS: Mapping[str, str] = {
    "encrypted": "true",  # ebs.csi.aws.com, kubernetes.io/aws-ebs, cinder
    "kmsKeyId": "",  # ebs.csi.aws.com with a customer key
    "disk-encryption-kms-key": "",  # pd.csi.storage.gke.io
    "diskEncryptionSetID": "",  # disk.csi.azure.com
}
# Parameters shown in the evidence: names and values that identify the storage, never secrets' names.
SHOWN = ("type", "fsType", "csi.storage.k8s.io/fstype", "encrypted", "skuName", "replication-type")


def states_encryption(parameters: Mapping[str, Any]) -> str | None:
    """The parameter that requests encryption, or None."""
    for key, want in ENCRYPTION_PARAMETERS.items():
        value = str(parameters.get(key, "")).strip()
        if value and (not want or value.lower() == want):
            return key
    return None


def _default_class(api: KubeApi) -> Obj | None:
    for sc in api.list("storage.k8s.io/v1", "StorageClass"):
        notes = (sc.get("metadata") or {}).get("annotations") or {}
        if str(notes.get(DEFAULT_CLASS, "")).lower() == "true":
            return sc
    return None


def node_storage(api: KubeApi, want: Desired, live: Live) -> dict[str, dict[str, Any]]:
    """Per node: claim, StorageClass, provisioner, shown parameters and whether the class states encryption."""
    classes: dict[str, Obj | None] = {}
    out: dict[str, dict[str, Any]] = {}
    for claim, node in sorted(claim_names(want).items()):
        base: dict[str, Any] = {"kind": "pvc", "claim": claim, "measured": False, "encrypted": None}
        try:
            pvc = live.get(Ref("v1", "PersistentVolumeClaim", want.namespace, claim)) or api.get(
                Ref("v1", "PersistentVolumeClaim", want.namespace, claim))
            name = ((pvc or {}).get("spec") or {}).get("storageClassName")
            if pvc is None:
                out[node] = {**base, "detail": f"claim {claim} does not exist"}
                continue
            key = name or ""
            if key not in classes:
                classes[key] = api.get(Ref("storage.k8s.io/v1", "StorageClass", "", name)) if name \
                    else _default_class(api)
            sc = classes[key]
        except HcopsError as exc:
            out[node] = {**base, "detail": f"cannot read the claim's StorageClass: {exc.message}"}
            continue
        if sc is None:
            out[node] = {**base, "storageClass": name,
                         "detail": f"StorageClass {name or '(cluster default)'} not found"}
            continue
        params = {str(k): str(v) for k, v in (sc.get("parameters") or {}).items()}
        stated = states_encryption(params)
        sc_name = (sc.get("metadata") or {}).get("name")
        out[node] = {**base, "measured": True, "encrypted": stated is not None,
                     "method": "storageclass" if stated else None, "storageClass": sc_name,
                     "provisioner": sc.get("provisioner"),
                     "parameters": {k: v for k, v in sorted(params.items()) if k in SHOWN or k == stated},
                     "detail": (f"StorageClass {sc_name} ({sc.get('provisioner')}) requests encryption "
                                f"({stated})" if stated else
                                f"StorageClass {sc_name} ({sc.get('provisioner')}) states no encryption")}
    return out

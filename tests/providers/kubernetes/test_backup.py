"""The Kubernetes backup backend without a cluster: a fake API server and a fake archive server behind the
same calls (``KubeApi`` verbs, ``transfer.raw``) check what is created, copied and removed, in which order,
and that the token and the keys stay where they belong."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from hcops.backup.backend import NodeBackend, backend_for, restore_config
from hcops.errors import EnvironmentProblem
from hcops.plan.desired import NetworkPlan, build_plan
from hcops.providers.kubernetes import backup as kbackup
from hcops.providers.kubernetes import transfer
from hcops.providers.kubernetes.api import ApiError, Obj, Ref, ResourceType
from hcops.providers.kubernetes.backup import KubernetesBackend, _first_file, make_tar
from hcops.spec.loader import load_spec
from tests.conftest import SMALL_SPEC, SpecDir

NS = "small-ns"
KUBE = "  provider: {type: kubernetes, kubernetes: {namespace: small-ns}}\n"


@pytest.fixture
def plan(spec_dir: SpecDir, tmp_path: Path) -> NetworkPlan:
    return build_plan(load_spec(spec_dir.write(SMALL_SPEC + KUBE), None), tmp_path / "state")


class FakeApi:
    """The ``KubeApi`` calls the backend makes, on objects kept in a dict; pods run as soon as created."""

    server = "https://fake:6443"

    def __init__(self) -> None:
        self.objects: dict[Ref, Obj] = {}
        self.calls: list[tuple[str, str]] = []
        self.uid = 0

    def put(self, obj: Obj) -> Obj:
        self.uid += 1
        obj.setdefault("metadata", {}).setdefault("uid", f"uid-{self.uid}")
        self.objects[Ref.of(obj)] = obj
        return obj

    def resource_type(self, api_version: str, kind: str) -> ResourceType:
        return ResourceType(api_version, kind, kind.lower() + "s", True)

    def get(self, ref: Ref) -> Obj | None:
        return self.objects.get(ref)

    def list(self, api_version: str, kind: str, namespace: str | None = None, *, selector: str | None = None,
             field_selector: str | None = None) -> list[Obj]:
        want = dict(p.split("=", 1) for p in (selector or "").split(",") if p)
        return [o for r, o in self.objects.items() if r.kind == kind and
                all((o["metadata"].get("labels") or {}).get(k) == v for k, v in want.items())]

    def create(self, api_version: str, kind: str, obj: Mapping[str, Any], namespace: str | None = None) -> Obj:
        new = json.loads(json.dumps({"apiVersion": api_version, "kind": kind, **obj}))
        if kind == "Pod":
            new["status"] = {"phase": "Running", "podIP": "10.1.0.9"}
        self.calls.append(("create", f"{kind} {new['metadata']['name']}"))
        return self.put(new)

    def delete(self, ref: Ref, *, propagation: str = "Background") -> bool:
        self.calls.append(("delete", f"{ref.kind} {ref.name}"))
        return self.objects.pop(ref, None) is not None

    def apply(self, obj: Mapping[str, Any], *, dry_run: bool = False, force: bool = False) -> Obj:
        self.calls.append(("apply", f"{obj['kind']} {obj['metadata']['name']} force={force}"))
        return self.put(json.loads(json.dumps(obj)))

    def request(self, method: str, path: str, *, query: Any = None, body: Any = None, content_type: str = "",
                timeout: float | None = None) -> Any:
        self.calls.append((method, f"{path} {json.dumps(body)}"))
        if path.endswith("/scale"):
            name = path.split("/")[-2]
            if body["spec"]["replicas"] == 0:
                self.objects.pop(Ref("v1", "Pod", NS, f"{name}-0"), None)
            else:
                self.create("v1", "Pod", {"metadata": {"name": f"{name}-0", "namespace": NS}})
        return {}


class FakeResponse:
    def __init__(self, body: bytes = b"") -> None:
        self.body = body

    def stream(self, n: int) -> Iterator[bytes]:
        for i in range(0, len(self.body), 4):
            yield self.body[i:i + 4]

    def drain_conn(self) -> None:
        pass

    def release_conn(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakeArchive:
    """``hcops-probe archive`` as ``transfer.raw`` reaches it: files under a dict, the token checked."""

    def __init__(self, api: FakeApi, files: dict[str, bytes] | None = None) -> None:
        self.api = api
        self.files = dict(files or {})
        self.puts: list[tuple[str | None, list[str]]] = []
        self.done = 0

    def token(self, pod: str) -> str:
        secret = self.api.objects[Ref("v1", "Secret", NS, pod)]
        return str(secret["stringData"]["token"])

    def __call__(self, api: Any, method: str, path: str, *, query: Mapping[str, str] | None = None,
                 headers: Mapping[str, str] | None = None, body: Any = None, length: int | None = None,
                 timeout: float = 0) -> FakeResponse:
        pod, _, rest = path.partition(f":{transfer.ARCHIVE_PORT}/proxy/")
        pod = pod.rsplit("/", 1)[-1]
        if rest == "healthz":
            return FakeResponse(b"ok")
        if (headers or {}).get(transfer.TOKEN_HEADER) != self.token(pod):
            raise ApiError(403, "Forbidden", "forbidden", method=method, path=path)
        if rest == "done":
            self.done += 1
            return FakeResponse()
        if method == "GET":
            want = (query or {})["path"]
            found = [(n, b) for n, b in sorted(self.files.items()) if n == want or n.startswith(want + "/")]
            if not found:
                raise ApiError(404, "NotFound", "not found", method=method, path=path)
            return FakeResponse(make_tar(found))
        data = body if isinstance(body, bytes) else body.read()
        assert length == len(data)
        clear = (query or {}).get("clear")
        if clear:
            self.files = {n: b for n, b in self.files.items() if not n.startswith(clear + "/")}
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = tar.getnames()
            for m in tar:
                if m.isfile():
                    self.files[m.name] = tar.extractfile(m).read()  # type: ignore[union-attr]
        self.puts.append((clear, names))
        return FakeResponse(b'{"files": 1}')


@pytest.fixture
def fake(plan: NetworkPlan, monkeypatch: pytest.MonkeyPatch) -> tuple[KubernetesBackend, FakeApi, FakeArchive]:
    api = FakeApi()
    arch = FakeArchive(api, {"data/blockstore.db/1.ldb": b"blocks", "data/priv_validator_state.json": b'{"height":"7"}'})
    monkeypatch.setattr(transfer, "raw", arch)
    monkeypatch.setattr(kbackup, "POLL", 0.0)
    backend = KubernetesBackend(plan, api)  # type: ignore[arg-type]
    for n in plan.nodes:
        api.put({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": n.name, "namespace": NS}})
        api.put({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": f"home-{n.name}-0", "namespace": NS}})
        api.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{n.name}-0", "namespace": NS},
                 "spec": {"nodeName": "worker-1"},
                 "status": {"phase": "Running", "containerStatuses": [{"state": {"running": {}}}]}})
    return backend, api, arch


def _helpers(api: FakeApi) -> list[str]:
    return [f"{r.kind} {r.name}" for r, o in api.objects.items() if transfer.LABEL in (o["metadata"].get("labels") or {})]


def test_backend_for_kubernetes_is_the_kubernetes_backend(plan: NetworkPlan) -> None:
    backend: NodeBackend = backend_for(plan)
    assert isinstance(backend, KubernetesBackend) and backend.provider == "kubernetes" and backend.namespace == NS


def test_stop_scales_to_zero_and_waits_for_the_pod_start_scales_back(fake: Any, plan: NetworkPlan) -> None:
    backend, api, _ = fake
    node = plan.node("a-val-0")
    assert backend.running(node)
    backend.stop(node)
    assert not backend.running(node)
    assert ("PATCH", f"/apis/apps/v1/namespaces/{NS}/statefulsets/a-val-0/scale " + '{"spec": {"replicas": 0}}') \
        in api.calls
    backend.start(node)
    assert api.calls[-2][1].endswith('{"spec": {"replicas": 1}}')


def test_data_tar_streams_through_a_token_guarded_helper_that_is_removed(fake: Any, plan: NetworkPlan) -> None:
    backend, api, _ = fake
    node = plan.node("d-obs-0")
    with backend.data_tar(node) as stream:
        assert len(_helpers(api)) == 3  # Secret, NetworkPolicy, Pod
        pod = next(o for r, o in api.objects.items() if r.kind == "Pod" and r.name.startswith("hcops-backup-"))
        data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert "data/blockstore.db/1.ldb" in tar.getnames()
    assert _helpers(api) == []
    vol = next(v for v in pod["spec"]["volumes"] if v["name"] == "home")
    assert vol["persistentVolumeClaim"] == {"claimName": "home-d-obs-0-0", "readOnly": True}
    assert pod["spec"]["nodeName"] == "worker-1"  # a ReadWriteOnce claim: on the node's machine
    assert "hcops.network" not in pod["metadata"]["labels"]


def test_the_token_is_in_the_secret_only_and_the_pod_is_restricted(plan: NetworkPlan) -> None:
    spec = transfer.HelperSpec(name="h", namespace=NS, image="img", labels={transfer.LABEL: "n"},
                               volumes=[{"name": "home", "emptyDir": {}}])
    secret, policy, pod = transfer.helper_objects(spec, "T" * 40)
    assert secret["stringData"] == {"token": "T" * 40}
    assert "T" * 40 not in json.dumps(pod) + json.dumps(policy)
    c = pod["spec"]["containers"][0]
    assert c["securityContext"]["readOnlyRootFilesystem"] and c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["automountServiceAccountToken"] is False and pod["spec"]["restartPolicy"] == "Never"
    assert policy["spec"]["ingress"] == [{"ports": [{"port": transfer.ARCHIVE_PORT, "protocol": "TCP"}]}]
    assert "egress" not in policy["spec"] and "Egress" in policy["spec"]["policyTypes"]


def test_a_wrong_token_is_refused(fake: Any, plan: NetworkPlan) -> None:
    backend, api, arch = fake
    spec = backend._copy_spec(plan.node("a-val-0"), "x", read_only=True)
    with transfer.helper(api, spec) as h:
        h._token = "not-the-token"
        with pytest.raises(EnvironmentProblem, match="forbidden"), h.get_tar("data"):
            pass


def test_read_state(fake: Any, plan: NetworkPlan) -> None:
    backend, api, _ = fake
    node = plan.node("a-val-0")
    assert backend.read_state(node) == b'{"height":"7"}'
    del api.objects[Ref("v1", "PersistentVolumeClaim", NS, "home-a-val-0-0")]
    assert backend.read_state(node) is None


def test_replace_writes_config_claim_data_and_state(fake: Any, plan: NetworkPlan, tmp_path: Path) -> None:
    backend, api, arch = fake
    node = plan.node("a-val-0")
    backend.stop(node)
    claim = Ref("v1", "PersistentVolumeClaim", NS, "home-a-val-0-0")
    del api.objects[claim]  # a lost disk
    tar = tmp_path / "data.tar"
    tar.write_bytes(make_tar([("data/", None), ("data/blockstore.db/2.ldb", b"restored")]))
    config = restore_config(backend.config_toml(node), 10)
    backend.replace(node, tar, b'{"height":"99"}', config)
    cm = api.objects[Ref("v1", "ConfigMap", NS, "a-val-0-config")]
    assert "double_sign_check_height = 10" in cm["data"]["config.toml"]
    assert ("apply", "ConfigMap a-val-0-config force=True") in api.calls
    made = api.objects[claim]
    assert made["spec"]["resources"]["requests"]["storage"] and made["metadata"]["labels"]["hcops.node"] == "a-val-0"
    assert arch.puts[0][0] == "data" and arch.puts[1] == (None, ["data/priv_validator_state.json"])
    assert arch.files == {"data/blockstore.db/2.ldb": b"restored", "data/priv_validator_state.json": b'{"height":"99"}'}
    assert _helpers(api) == [] and not backend.running(node)
    order = [c for _, c in api.calls if c.split(" ")[0] in ("ConfigMap", "PersistentVolumeClaim", "Pod")]
    assert order[0].startswith("ConfigMap") and order[1] == "PersistentVolumeClaim home-a-val-0-0"


def test_scratch_loads_the_data_before_the_node_starts_and_removes_everything(fake: Any, plan: NetworkPlan,
                                                                               tmp_path: Path) -> None:
    backend, api, arch = fake
    node = plan.node("d-obs-0")
    tar = tmp_path / "data.tar"
    tar.write_bytes(make_tar([("data/blockstore.db/2.ldb", b"restored")]))
    with backend.scratch(node, tar, b'moniker = "drill"\n', "ab12") as rpc:
        pod = next(o for r, o in api.objects.items() if r.kind == "Pod" and r.name.startswith("hcops-drill-ab12-"))
        assert arch.done == 1 and rpc.pod == pod["metadata"]["name"]
        cm = next(o for r, o in api.objects.items() if r.kind == "ConfigMap" and r.name.startswith("hcops-drill-"))
        assert set(cm["data"]) == {"config.toml", "genesis.json"}
    assert [c.get("name") for c in pod["spec"]["initContainers"]] == ["archive"]
    assert pod["spec"]["containers"][0]["args"][0] == "start"
    assert all("secret" not in v or v["secret"]["secretName"] == pod["metadata"]["name"]
               for v in pod["spec"]["volumes"])  # no key Secret of the consortium
    assert "data/blockstore.db/2.ldb" in arch.files
    assert _helpers(api) == []


def test_a_pod_that_cannot_start_fails_at_once(fake: Any, plan: NetworkPlan) -> None:
    backend, api, _ = fake
    real_create = api.create

    def broken(api_version: str, kind: str, obj: Mapping[str, Any], namespace: str | None = None) -> Obj:
        made = real_create(api_version, kind, obj, namespace)
        if kind == "Pod":
            made["status"] = {"phase": "Pending", "containerStatuses": [
                {"name": "archive", "state": {"waiting": {"reason": "ErrImagePull", "message": "no such image"}}}]}
        return made

    api.create = broken
    with pytest.raises(EnvironmentProblem, match="ErrImagePull"), backend.data_tar(plan.node("d-obs-0")):
        pass
    assert _helpers(api) == []


def test_tar_helpers_round_trip() -> None:
    data = make_tar([("data/", None), ("data/priv_validator_state.json", b"{}")])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        modes = {m.name: (m.type, m.mode) for m in tar}
    assert modes == {"data": (tarfile.DIRTYPE, 0o700), "data/priv_validator_state.json": (tarfile.REGTYPE, 0o600)}
    assert _first_file(data) == b"{}"

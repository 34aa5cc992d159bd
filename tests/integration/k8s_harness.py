"""A real Kubernetes control plane on 127.0.0.1 for the integration tests: etcd + kube-apiserver,
optionally kube-controller-manager + kube-scheduler (so that StatefulSets make Pods, namespaces are
finalised and the scheduler says why a Pod cannot run).

The binaries are built from source by ``scripts/k8s/build`` (``scripts/bootstrap kube``) into
``$HCOPS_CACHE/bin``. Everything else is generated per run in a temp folder: a CA and serving
certificate (``cryptography``), a static token file whose admin is in ``system:masters``, the
service-account signing key, and a kubeconfig. Authorization is ``Node,RBAC``, as on real clusters, so
that the RBAC objects hcops writes are evaluated by the real authorizer.

One control plane serves the whole pytest session: test modules call :func:`shared_cluster` from their
own session-scoped fixture; it is started by the first caller and stopped when the session ends.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import ipaddress
import json
import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hcops.plan.desired import NetworkPlan, build_plan
from hcops.spec.loader import load_spec
from tests.integration.requirements import binary, cache_dir, missing, unavailable

COMPONENT = "kube"
SERVICE_CIDR = "10.96.0.0/24"
READY_TIMEOUT = 90.0
NODE_NAME = "hcops-node"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ certificates and credentials
def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    sans: list[x509.GeneralName] | None = None,
    group: str | None = None,
) -> x509.Certificate:
    """A certificate; with ``group`` a client certificate of that group (Kubernetes reads O as the group)."""
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, subject)]
    if group:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, group))
    name = x509.Name(attrs)
    issuer_name, signer = issuer if issuer else (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        usage = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH if group else x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(signer, hashes.SHA256())


@dataclass(frozen=True)
class Credentials:
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    sa_key: Path
    sa_pub: Path
    token_file: Path
    tokens: dict[str, str]  # user -> bearer token
    # How the API server authenticates to the kubelet (exec, logs, port-forward), as kubeadm sets it up.
    kubelet_client_cert: Path
    kubelet_client_key: Path


def write_credentials(folder: Path) -> Credentials:
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _cert("hcops-test-ca", ca_key, None, ca=True)
    key = _key()
    service_ip = ipaddress.IPv4Network(SERVICE_CIDR)[1]
    sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(service_ip),
        *(
            x509.DNSName(n)
            for n in (
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            )
        ),
    ]
    serving = _cert("kube-apiserver", key, (ca.subject, ca_key), ca=False, sans=sans)
    sa_key = _key()
    client_key = _key()
    client = _cert("kube-apiserver-kubelet-client", client_key, (ca.subject, ca_key), ca=False,
                   group="system:masters")
    paths = {
        name: folder / name
        for name in ("ca.crt", "apiserver.crt", "apiserver.key", "sa.key", "sa.pub", "tokens.csv",
                     "kubelet-client.crt", "kubelet-client.key")
    }
    paths["kubelet-client.crt"].write_bytes(client.public_bytes(serialization.Encoding.PEM))
    paths["kubelet-client.key"].write_bytes(_pem_key(client_key))
    paths["ca.crt"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["apiserver.crt"].write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    paths["apiserver.key"].write_bytes(_pem_key(key))
    paths["sa.key"].write_bytes(_pem_key(sa_key))
    paths["sa.pub"].write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    # token,user,uid,"group1,group2": the admin and the two controllers are cluster admins; the kubelet
    # is a node (Node authorizer and NodeRestriction admission).
    groups = {
        "admin": "system:masters",
        "system:kube-controller-manager": "system:masters",
        "system:kube-scheduler": "system:masters",
        f"system:node:{NODE_NAME}": "system:nodes",
    }
    tokens = {user: secrets.token_hex(16) for user in groups}
    paths["tokens.csv"].write_text(
        "".join(f'{tok},{user},uid-{i},"{groups[user]}"\n' for i, (user, tok) in enumerate(tokens.items()))
    )
    for p in paths.values():
        p.chmod(0o600)
    return Credentials(
        ca_cert=paths["ca.crt"],
        serving_cert=paths["apiserver.crt"],
        serving_key=paths["apiserver.key"],
        sa_key=paths["sa.key"],
        sa_pub=paths["sa.pub"],
        token_file=paths["tokens.csv"],
        tokens=tokens,
        kubelet_client_cert=paths["kubelet-client.crt"],
        kubelet_client_key=paths["kubelet-client.key"],
    )


def write_kubeconfig(path: Path, server: str, ca: Path, token: str, *, context: str = "hcops-test") -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
    }
    path.write_text(json.dumps(doc, indent=2))  # JSON is YAML
    path.chmod(0o600)
    return path


def write_contexts(path: Path, cluster: KubeCluster, namespaces: dict[str, str], *, current: str) -> Path:
    """A kubeconfig with one context per entry of ``namespaces`` (context -> its default namespace), each
    with a user of its own name (the admin token: the test cluster has one identity), as organizations
    keep them side by side; ``current`` is a context whose server answers nothing (port 9 on 127.0.0.1),
    so that a command that would fall back to the current context fails instead of passing by luck."""
    ca = str(cluster.credentials.ca_cert)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": current,
        "clusters": [{"name": "cluster", "cluster": {"server": cluster.server, "certificate-authority": ca}},
                     {"name": "nowhere", "cluster": {"server": "https://127.0.0.1:9", "certificate-authority": ca}}],
        "users": [{"name": f"{c}-user", "user": {"token": cluster.token}} for c in [*namespaces, current]],
        "contexts": [*({"name": c, "context": {"cluster": "cluster", "user": f"{c}-user", "namespace": ns}}
                       for c, ns in namespaces.items()),
                     {"name": current, "context": {"cluster": "nowhere", "user": f"{current}-user"}}],
    }
    path.write_text(json.dumps(doc, indent=2))  # JSON is YAML
    path.chmod(0o600)
    return path


# ------------------------------------------------------------------ processes
@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


def _spawn(name: str, argv: list[str], folder: Path) -> Process:
    log = folder / f"{name}.log"
    fh = log.open("ab")
    try:
        popen = subprocess.Popen(
            argv,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=folder,
        )
    finally:
        fh.close()
    return Process(name=name, popen=popen, log=log)


class ClusterFailed(RuntimeError):
    pass


@dataclass
class KubeCluster:
    """A running control plane; ``kubeconfig`` has one context (``context``) with the admin token."""

    root: Path
    server: str
    kubeconfig: Path
    context: str
    credentials: Credentials
    controllers: bool
    processes: list[Process] = field(default_factory=list)

    @property
    def token(self) -> str:
        return self.credentials.tokens["admin"]

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.credentials.ca_cert))

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        req = urllib.request.Request(self.server + path, headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context()) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read() if exc.fp else b""

    def post(self, path: str, obj: dict[str, object], timeout: float = 10.0) -> dict[str, object]:
        req = urllib.request.Request(
            self.server + path,
            data=json.dumps(obj).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context()) as resp:
            doc: dict[str, object] = json.loads(resp.read())
            return doc

    def check_alive(self) -> None:
        for p in self.processes:
            if not p.alive():
                raise ClusterFailed(
                    f"{p.name} exited with {p.popen.returncode}; last lines of {p.log}:\n{p.tail()}"
                )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                status, body = self.get("/readyz", timeout=3)
                if status == 200:
                    return
                last = f"HTTP {status}: {body.decode(errors='replace')[-500:]}"
            except (OSError, urllib.error.URLError) as exc:
                last = str(exc)
            time.sleep(0.5)
        raise ClusterFailed(f"kube-apiserver not ready after {timeout:g} s ({last})")

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.stop()
        self.processes.clear()


def start_cluster(root: Path, *, controllers: bool = True) -> KubeCluster:
    """Start etcd and kube-apiserver (and the controllers) in ``root``; wait until ``/readyz`` answers 200."""
    etcd = binary("etcd", COMPONENT)
    apiserver = binary("kube-apiserver", COMPONENT)
    kcm = binary("kube-controller-manager", COMPONENT) if controllers else None
    scheduler = binary("kube-scheduler", COMPONENT) if controllers else None
    root.mkdir(parents=True, exist_ok=True)
    creds = write_credentials(root / "pki")
    client_port, peer_port, api_port = free_port(), free_port(), free_port()
    server = f"https://127.0.0.1:{api_port}"
    kubeconfig = write_kubeconfig(root / "kubeconfig", server, creds.ca_cert, creds.tokens["admin"])
    cluster = KubeCluster(
        root=root,
        server=server,
        kubeconfig=kubeconfig,
        context="hcops-test",
        credentials=creds,
        controllers=controllers,
    )
    etcd_url = f"http://127.0.0.1:{client_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    try:
        cluster.processes.append(
            _spawn(
                "etcd",
                [
                    str(etcd),
                    "--name=default",
                    f"--data-dir={root / 'etcd'}",
                    f"--listen-client-urls={etcd_url}",
                    f"--advertise-client-urls={etcd_url}",
                    f"--listen-peer-urls={peer_url}",
                    f"--initial-advertise-peer-urls={peer_url}",
                    f"--initial-cluster=default={peer_url}",
                    "--unsafe-no-fsync",
                    "--log-level=warn",
                    "--quota-backend-bytes=1073741824",
                ],
                root,
            )
        )
        cluster.processes.append(
            _spawn(
                "kube-apiserver",
                [
                    str(apiserver),
                    f"--etcd-servers={etcd_url}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={api_port}",
                    f"--tls-cert-file={creds.serving_cert}",
                    f"--tls-private-key-file={creds.serving_key}",
                    f"--client-ca-file={creds.ca_cert}",
                    f"--token-auth-file={creds.token_file}",
                    "--authorization-mode=Node,RBAC",
                    # Reaching the kubelet (port-forward, exec, logs): by the node's address, not its name
                    # (nothing resolves the test node's name), with a client certificate it accepts.
                    "--kubelet-preferred-address-types=InternalIP,Hostname",
                    f"--kubelet-client-certificate={creds.kubelet_client_cert}",
                    f"--kubelet-client-key={creds.kubelet_client_key}",
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                    f"--service-account-key-file={creds.sa_pub}",
                    f"--service-account-signing-key-file={creds.sa_key}",
                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                    "--profiling=false",
                    "--v=1",
                ],
                root,
            )
        )
        cluster.wait_ready()
        if kcm and scheduler:
            cluster.processes.append(
                _spawn(
                    "kube-controller-manager",
                    [
                        str(kcm),
                        f"--kubeconfig={_component_kubeconfig(cluster, 'system:kube-controller-manager')}",
                        "--bind-address=127.0.0.1",
                        f"--secure-port={free_port()}",
                        "--leader-elect=false",
                        f"--service-account-private-key-file={creds.sa_key}",
                        f"--root-ca-file={creds.ca_cert}",
                        "--controllers=*",
                        "--v=1",
                    ],
                    root,
                )
            )
            cluster.processes.append(
                _spawn(
                    "kube-scheduler",
                    [
                        str(scheduler),
                        f"--kubeconfig={_component_kubeconfig(cluster, 'system:kube-scheduler')}",
                        "--bind-address=127.0.0.1",
                        f"--secure-port={free_port()}",
                        "--leader-elect=false",
                        "--v=1",
                    ],
                    root,
                )
            )
            time.sleep(1.0)
            cluster.check_alive()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _component_kubeconfig(cluster: KubeCluster, user: str) -> Path:
    name = user.split(":")[-1]
    return write_kubeconfig(
        cluster.root / f"{name}.kubeconfig",
        cluster.server,
        cluster.credentials.ca_cert,
        cluster.credentials.tokens[user],
    )


# ------------------------------------------------------------------ pytest glue
_SHARED: dict[str, KubeCluster] = {}


def shared_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> KubeCluster:
    """The session's control plane: started on first use, stopped when pytest ends.

    Under ``CI=true`` a missing binary fails the test (``requirements.binary``); elsewhere it skips
    with a message naming ``scripts/bootstrap kube``.
    """
    cluster = _SHARED.get("cluster")
    if cluster is None:
        cluster = start_cluster(tmp_path_factory.mktemp("kube"))
        _SHARED["cluster"] = cluster

        def _stop() -> None:
            _SHARED.pop("cluster", None)
            cluster.stop()

        request.config.add_cleanup(_stop)
    cluster.check_alive()
    return cluster


# ------------------------------------------------------------------ test networks
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "regional-health-net" / "network.yaml"
ENV = "k8s"


@dataclass
class KubeNetwork:
    """A copy of the example consortium under a unique name and namespace, with ``provider.type:
    kubernetes`` set by the overlay ``environments/k8s.yaml``; its own state dir."""

    __test__ = False

    root: Path
    name: str
    cluster: KubeCluster
    wait_for_ready: bool = False

    @property
    def spec(self) -> Path:
        return self.root / "network.yaml"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def write(self, *extra: str, **settings: str) -> KubeNetwork:
        """(Re)write the overlay; ``extra``: more overlay lines under ``spec:`` (two-space indented);
        ``settings``: more ``provider.kubernetes`` fields (YAML flow values)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.spec.exists():
            self.spec.write_text(EXAMPLE.read_text())
        env = self.root / "environments"
        env.mkdir(exist_ok=True)
        kube = {
            "namespace": self.name,
            "context": self.cluster.context,
            "waitForReady": "true" if self.wait_for_ready else "false",
            **settings,
        }
        flow = ", ".join(f"{k}: {v}" for k, v in kube.items())
        lines = [
            f"metadata: {{name: {self.name}}}",
            "spec:",
            f"  provider: {{type: kubernetes, kubernetes: {{{flow}}}}}",
            *extra,
        ]
        (env / f"{ENV}.yaml").write_text("\n".join(lines) + "\n")
        return self

    def plan(self) -> NetworkPlan:
        return build_plan(load_spec(self.spec, ENV), self.state_dir)

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig), "COLUMNS": "200"}

    def hcops(self, *argv: str, timeout: float = 300, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
        cmd = [
            sys.executable,
            "-m",
            "hcops",
            argv[0],
            "-f",
            str(self.spec),
            "--env",
            ENV,
            "--state-dir",
            str(self.state_dir),
            *argv[1:],
        ]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root, env={**self.env(), **(env or {})}
        )


def unique_name(tag: str) -> str:
    return f"hct-{tag}-{secrets.token_hex(3)}"


def cleanup(cluster: KubeCluster, namespace: str) -> None:
    """Delete a test namespace (and so everything in it) without waiting for it to go."""
    req = urllib.request.Request(
        f"{cluster.server}/api/v1/namespaces/{namespace}",
        method="DELETE",
        headers={"Authorization": f"Bearer {cluster.token}"},
    )
    with contextlib.suppress(urllib.error.HTTPError, OSError):
        urllib.request.urlopen(req, timeout=10, context=cluster.ssl_context()).close()


# ------------------------------------------------------------------ a node that runs pods
# kubelet (built by scripts/k8s/build), containerd and the CNI plugins from Debian, a locally built pause
# image, the node image from the Docker engine, and a small cluster DNS on the host (ClusterDns). Pods get
# addresses on a bridge of this run's own; persistent volumes are host folders made for the test.
NODE_COMPONENT = "kube-node"
NODE_OPT_IN = "HCOPS_K8S_NODE"
CNI_BIN = Path("/usr/lib/cni")
PAUSE_IMAGE = "hcops.local/pause:3.10"
NODE_READY_TIMEOUT = 120.0


def node_binaries() -> dict[str, Path]:
    """What a node needs. The full-cluster case starts pods, needs root and takes a minute, so a developer
    opts in with ``HCOPS_K8S_NODE=1`` (``make test`` does; under CI=true not opting in fails). Once opted
    in, a missing piece fails under CI=true and skips elsewhere; ``scripts/bootstrap kube-node`` installs the pieces."""
    if os.environ.get(NODE_OPT_IN) != "1":
        unavailable(f"the full-cluster Kubernetes tests run with {NODE_OPT_IN}=1 "
                    f"(after `scripts/bootstrap {NODE_COMPONENT}`)")
    found: dict[str, Path] = {}
    lacking: list[str] = []
    for name in ("kubelet", "pause"):
        candidate = cache_dir() / "bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            found[name] = candidate
        else:
            lacking.append(name)
    for name in ("containerd", "ctr", "runc", "docker", "ip", "iptables", "findmnt"):
        path = shutil.which(name) or next(
            (str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name) if p.exists()), None
        )
        if path is None:
            lacking.append(name)
        else:
            found[name] = Path(path)
    lacking += [f"CNI plugin {p}" for p in ("bridge", "host-local", "loopback") if not (CNI_BIN / p).exists()]
    if os.geteuid() != 0:
        lacking.append("root")
    if lacking:
        missing(f"a Kubernetes node ({', '.join(lacking)})", NODE_COMPONENT)
    return found


def _run(
    *argv: str | Path, stdin: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([str(a) for a in argv], input=stdin, capture_output=True, timeout=300)
    if check and proc.returncode != 0:
        raise ClusterFailed(f"{' '.join(map(str, argv))}: {proc.stderr.decode(errors='replace').strip()}")
    return proc


def pause_image_tar(pause: Path) -> bytes:
    """A docker-archive of an image holding only ``/pause`` (what ``ctr images import`` reads)."""
    import hashlib
    import io
    import tarfile

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        info = tarfile.TarInfo("pause")
        data = pause.read_bytes()
        info.size, info.mode = len(data), 0o755
        t.addfile(info, io.BytesIO(data))
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [PAUSE_IMAGE], "Layers": ["layer/layer.tar"]}]
    ).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        for name, content in (
            (config_name, config),
            ("layer/layer.tar", layer_bytes),
            ("manifest.json", manifest),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            t.addfile(info, io.BytesIO(content))
    return out.getvalue()


def _free_subnet() -> ipaddress.IPv4Network:
    used = _run("ip", "-4", "-o", "addr").stdout.decode()
    for third in random.sample(range(256), 256):
        net = ipaddress.IPv4Network(f"10.244.{third}.0/24")
        if f" 10.244.{third}." not in used:
            return net
    raise ClusterFailed("no free 10.244.x.0/24 for the pod network")


class ClusterDns:
    """The cluster DNS of the test node, on the pod bridge's gateway, port 53: A records for
    ``<pod>.<service>.<ns>.svc.cluster.local`` (a StatefulSet pod's hostname and subdomain) and for headless
    ``<service>.<ns>.svc.cluster.local``, read from the API server; every other name is NXDOMAIN (nothing is
    forwarded off this machine). Enough for CometBFT peers; not a general resolver."""

    SUFFIX = "svc.cluster.local"

    def __init__(self, cluster: KubeCluster, address: str) -> None:
        self.cluster = cluster
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        self.sock.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="cluster-dns", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, peer = self.sock.recvfrom(512)
            except (TimeoutError, OSError):
                continue
            with contextlib.suppress(Exception):  # a malformed query gets no answer
                self.sock.sendto(self.answer(query), peer)

    def answer(self, query: bytes) -> bytes:
        qid, flags = query[:2], int.from_bytes(query[2:4], "big")
        labels, pos = [], 12
        while query[pos]:
            n = query[pos]
            labels.append(query[pos + 1 : pos + 1 + n].decode("ascii").lower())
            pos += n + 1
        qtype = int.from_bytes(query[pos + 1 : pos + 3], "big")
        question = query[12 : pos + 5]
        ips = self.lookup(labels) if qtype in (1, 28, 255) else []
        rcode = 0 if ips is not None else 3  # NXDOMAIN for names that do not exist
        answers = [ip for ip in ips or () if qtype in (1, 255)]
        header = qid + (0x8400 | (flags & 0x0100) | rcode).to_bytes(2, "big")
        header += (1).to_bytes(2, "big") + len(answers).to_bytes(2, "big") + bytes(4)
        body = b"".join(
            b"\xc0\x0c"
            + (1).to_bytes(2, "big")
            + (1).to_bytes(2, "big")
            + (5).to_bytes(4, "big")
            + (4).to_bytes(2, "big")
            + ipaddress.IPv4Address(ip).packed
            for ip in answers
        )
        return header + question + body

    def lookup(self, labels: list[str]) -> list[str] | None:
        """Addresses of a name; ``None`` when it does not exist, ``[]`` when it has no address yet."""
        name = ".".join(labels)
        if not name.endswith("." + self.SUFFIX):
            return None
        parts = name[: -len(self.SUFFIX) - 1].split(".")
        if len(parts) == 3:
            host, service, ns = parts
        elif len(parts) == 2:
            host, (service, ns) = "", parts
        else:
            return None
        status, body = self.cluster.get(f"/api/v1/namespaces/{ns}/pods")
        if status != 200:
            return None
        ips = [
            p["status"]["podIP"]
            for p in json.loads(body).get("items") or ()
            if p["spec"].get("subdomain") == service
            and (not host or p["spec"].get("hostname") == host)
            and p.get("status", {}).get("podIP")
        ]
        if ips or self.cluster.get(f"/api/v1/namespaces/{ns}/services/{service}")[0] == 200:
            return ips
        return None


@dataclass
class KubeNode:
    """A kubelet node named ``NODE_NAME`` registered with ``cluster``; pods on ``subnet``."""

    cluster: KubeCluster
    root: Path
    bins: dict[str, Path]
    bridge: str = ""
    subnet: ipaddress.IPv4Network = ipaddress.IPv4Network("10.244.0.0/24")
    processes: list[Process] = field(default_factory=list)
    rules: list[list[str]] = field(default_factory=list)
    netns_before: set[str] = field(default_factory=set)
    dns: ClusterDns | None = None
    chains_before: set[str] = field(default_factory=set)
    cgroup_root: str = ""
    socket_dir: str = ""

    @property
    def gateway(self) -> str:
        return str(self.subnet[1])

    @property
    def run_dir(self) -> Path:
        """containerd's and the kubelet's working folders, which hold unix sockets (paths limited to ~104
        bytes): a short folder of its own in /tmp, not under ``root`` (which keeps configs and logs)."""
        if not self.socket_dir:
            self.socket_dir = tempfile.mkdtemp(prefix="hck-", dir="/tmp")
        return Path(self.socket_dir)

    @property
    def socket(self) -> Path:
        return self.run_dir / "c.sock"

    def ctr(
        self, *argv: str, stdin: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        return _run(
            self.bins["ctr"],
            "--address",
            self.socket,
            "--namespace",
            "k8s.io",
            *argv,
            stdin=stdin,
            check=check,
        )

    # -------------------------------------------------------------- start
    def start(self, images: list[str]) -> None:
        # The kubelet's pod cgroups go under a root of this node's own, so that two test nodes (or a real
        # kubelet) never see each other's pods as orphans, and stop() knows what to remove.
        self.cgroup_root = f"/hcops-{secrets.token_hex(3)}"
        self._make_cgroup_root()
        self.chains_before = {
            line.split()[1]
            for table in ("filter", "nat", "mangle")
            for line in _run("iptables", "-t", table, "-S").stdout.decode().splitlines()
            if line.startswith("-N ")
        }
        self.netns_before = set(os.listdir("/var/run/netns")) if os.path.isdir("/var/run/netns") else set()
        self.subnet = _free_subnet()
        self.bridge = f"hcbr{secrets.token_hex(2)}"
        _run("ip", "link", "add", "name", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for rule in (
            ["FORWARD", "-i", self.bridge, "-j", "ACCEPT"],
            ["FORWARD", "-o", self.bridge, "-j", "ACCEPT"],
        ):
            _run("iptables", "-I", *rule[:1], "1", *rule[1:])
            self.rules.append(rule)
        self._containerd()
        self.ctr("images", "import", "-", stdin=pause_image_tar(self.bins["pause"]))
        for image in images:
            saved = _run("docker", "save", image).stdout
            self.ctr("images", "import", "-", stdin=saved)
        self._dns()
        self._kubelet()
        self.wait_ready()

    def _containerd(self) -> None:
        base = self.run_dir / "containerd"
        (self.root / "cni" / "net.d").mkdir(parents=True, exist_ok=True)
        conflist = {
            "cniVersion": "0.4.0",
            "name": "hcops",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "subnet": str(self.subnet),
                        "dataDir": str(self.root / "cni" / "ipam"),
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                }
            ],
        }
        (self.root / "cni" / "net.d" / "10-hcops.conflist").write_text(json.dumps(conflist))
        config = f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
[grpc]
  address = "{self.socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # No CAP_SYS_RESOURCE in some sandboxes: never ask below containerd's own oom_score_adj.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{self.root / "cni" / "net.d"}"
"""
        base.mkdir(parents=True, exist_ok=True)
        (base / "config.toml").write_text(config)
        self.processes.append(
            _spawn(
                "containerd", [str(self.bins["containerd"]), "--config", str(base / "config.toml")], self.root
            )
        )
        deadline = time.monotonic() + 30
        while self.ctr("version", check=False).returncode != 0:
            self.check_alive()
            if time.monotonic() > deadline:
                raise ClusterFailed("containerd did not answer within 30 s")
            time.sleep(0.3)

    def _dns(self) -> None:
        self.dns = ClusterDns(self.cluster, self.gateway)
        self.dns.start()

    def _kubelet(self) -> None:
        folder = self.root / "kubelet"
        folder.mkdir(parents=True, exist_ok=True)
        (self.root / "resolv.conf").write_text(f"nameserver {self.gateway}\n")
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": self.gateway,
            "port": free_port(),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.cluster.credentials.ca_cert)},
            },
            "authorization": {"mode": "Webhook"},
            "cgroupDriver": "cgroupfs",
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "clusterDNS": [self.gateway],
            "clusterDomain": "cluster.local",
            "resolvConf": str(self.root / "resolv.conf"),
            "failSwapOn": False,
            "failCgroupV1": False,
            "serializeImagePulls": False,
            "maxPods": 40,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "syncFrequency": "5s",
            "oomScoreAdj": 0,
            "cgroupRoot": self.cgroup_root,
            "fileCheckFrequency": "5s",
            "nodeStatusUpdateFrequency": "5s",
        }
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        kubeconfig = write_kubeconfig(
            folder / "kubeconfig",
            self.cluster.server,
            self.cluster.credentials.ca_cert,
            self.cluster.credentials.tokens[f"system:node:{NODE_NAME}"],
        )
        self.processes.append(
            _spawn(
                "kubelet",
                [
                    str(self.bins["kubelet"]),
                    f"--config={folder / 'config.json'}",
                    f"--kubeconfig={kubeconfig}",
                    f"--root-dir={self.run_dir / 'kubelet'}",
                    f"--cert-dir={folder / 'pki'}",
                    f"--hostname-override={NODE_NAME}",
                    f"--node-ip={self.gateway}",
                    "--v=1",
                ],
                self.root,
            )
        )

    def check_alive(self) -> None:
        for p in self.processes:
            if not p.alive():
                raise ClusterFailed(
                    f"{p.name} exited with {p.popen.returncode}; last lines of {p.log}:\n{p.tail()}"
                )

    def wait_ready(self, timeout: float = NODE_READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = "not registered"
        while time.monotonic() < deadline:
            self.check_alive()
            status, body = self.cluster.get(f"/api/v1/nodes/{NODE_NAME}")
            if status == 200:
                conds = {c["type"]: c for c in json.loads(body).get("status", {}).get("conditions") or ()}
                ready = conds.get("Ready") or {}
                if ready.get("status") == "True":
                    return
                last = f"Ready={ready.get('status')}: {ready.get('message', '')}"
            time.sleep(1)
        raise ClusterFailed(
            f"node {NODE_NAME} not ready after {timeout:g} s ({last}); kubelet log: "
            f"{self.processes[-1].tail(15) if self.processes else ''}"
        )

    # -------------------------------------------------------------- volumes
    def make_volumes(self, count: int, size: str, storage_class: str | None) -> None:
        """``count`` host-folder PersistentVolumes the nodes' claims bind to (no provisioner here)."""
        for _ in range(count):
            name = f"hcops-pv-{secrets.token_hex(4)}"
            folder = self.root / "volumes" / name
            folder.mkdir(parents=True)
            os.chown(folder, 10001, 10001)
            folder.chmod(0o700)
            spec = {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": str(folder), "type": "Directory"},
            }
            if storage_class:
                spec["storageClassName"] = storage_class
            self.cluster.post(
                "/api/v1/persistentvolumes",
                {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec},
            )

    # -------------------------------------------------------------- stop
    def stop(self) -> None:
        """Stop the kubelet, kill every container of this containerd, then undo mounts, namespaces, bridge."""
        by_name = {p.name: p for p in self.processes}
        if "kubelet" in by_name:
            by_name["kubelet"].stop()
        if self.dns is not None:
            self.dns.stop()
            self.dns = None
        if "containerd" in by_name and by_name["containerd"].alive():
            tasks = self.ctr("tasks", "ls", "-q", check=False).stdout.decode().split()
            for task in tasks:
                self.ctr("tasks", "kill", "-s", "SIGKILL", "--all", task, check=False)
            deadline = time.monotonic() + 20
            while tasks and time.monotonic() < deadline:
                time.sleep(0.5)
                running = self.ctr("tasks", "ls", check=False).stdout.decode()
                tasks = [t for t in tasks if f"{t} " in running and "RUNNING" in running.split(t, 1)[1][:80]]
            for task in self.ctr("tasks", "ls", "-q", check=False).stdout.decode().split():
                self.ctr("tasks", "delete", "--force", task, check=False)
            for c in self.ctr("containers", "ls", "-q", check=False).stdout.decode().split():
                self.ctr("containers", "delete", c, check=False)
            by_name["containerd"].stop()
        self._kill_shims()
        self.processes.clear()
        mounts = _run("findmnt", "-rn", "-o", "TARGET", check=False).stdout.decode().split("\n")
        mine = tuple(str(p) + "/" for p in (self.root, Path(self.socket_dir)) if str(p) not in ("", "."))
        for target in sorted((m for m in mounts if m.startswith(mine)), key=len, reverse=True):
            _run("umount", "-l", target, check=False)
        if os.path.isdir("/var/run/netns"):
            for ns in set(os.listdir("/var/run/netns")) - self.netns_before:
                if ns.startswith("cni-"):
                    _run("ip", "netns", "delete", ns, check=False)
        for rule in self.rules:
            _run("iptables", "-D", *rule, check=False)
        self.rules.clear()
        self._remove_kubelet_chains()
        self._remove_cgroups()
        if self.bridge:
            _run("ip", "link", "delete", self.bridge, check=False)
            self.bridge = ""
        if self.socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)

    def _remove_kubelet_chains(self) -> None:
        """The kubelet leaves iptables chains behind (KUBE-FIREWALL, canaries): remove those it added."""
        for table in ("filter", "nat", "mangle"):
            rules = _run("iptables", "-t", table, "-S", check=False).stdout.decode().splitlines()
            added = {line.split()[1] for line in rules if line.startswith("-N KUBE-")} - self.chains_before
            for line in rules:
                parts = line.split()
                if (
                    parts[:1] == ["-A"]
                    and "-j" in parts
                    and parts[parts.index("-j") + 1] in added
                    and parts[1] not in added
                ):
                    _run("iptables", "-t", table, "-D", *parts[1:], check=False)
            for chain in added:
                _run("iptables", "-t", table, "-F", chain, check=False)
            for chain in added:
                _run("iptables", "-t", table, "-X", chain, check=False)

    def _make_cgroup_root(self) -> None:
        """The kubelet wants its cgroup root to exist in every hierarchy (cgroup v1 here)."""
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            if not (hierarchy / "cgroup.procs").exists():
                continue
            folder = hierarchy / self.cgroup_root.lstrip("/")
            folder.mkdir(exist_ok=True)
            for name in ("cpuset.cpus", "cpuset.mems"):  # a v1 cpuset starts empty: inherit the parent's
                if (hierarchy / name).exists():
                    (folder / name).write_text((hierarchy / name).read_text())

    def _remove_cgroups(self) -> None:
        """The kubelet's cgroups (cgroupfs driver) under this node's root, in every hierarchy; empty by now."""
        if not self.cgroup_root:
            return
        for top in Path("/sys/fs/cgroup").glob(f"*{self.cgroup_root}"):
            for folder, _, _ in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
                with contextlib.suppress(OSError):
                    os.rmdir(folder)

    def _kill_shims(self) -> None:
        """containerd's shims outlive it: end those serving this run's containerd (found by its socket)."""
        marker = str(self.socket).encode()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"containerd-shim" in cmdline and marker in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)


# ------------------------------------------------------------------ the shared cluster with a node
_NODE_SHARED: dict[str, tuple[KubeCluster, KubeNode]] = {}
NODE_IMAGES = ["hcops/cometbft:0.38.17"]


def shared_node_cluster(
    root: Path, request: pytest.FixtureRequest | None = None
) -> tuple[KubeCluster, KubeNode]:
    """A control plane with one node that runs pods, for every test of the session that needs one:
    started on first use (in ``root``), stopped at the end of the session (or of the process, without
    ``request``). Skips when the node's components are missing (``scripts/bootstrap kube-node``)."""
    found = _NODE_SHARED.get("cluster")
    if found is None:
        bins = node_binaries()
        kube = start_cluster(root / "control-plane")
        node = KubeNode(kube, root / "node", bins)
        try:
            node.start(images=NODE_IMAGES)
        except BaseException:
            node.stop()
            kube.stop()
            raise
        found = _NODE_SHARED["cluster"] = (kube, node)

        def _stop() -> None:
            if _NODE_SHARED.pop("cluster", None) is not None:
                node.stop()
                kube.stop()

        if request is not None:
            request.config.add_cleanup(_stop)
        else:
            atexit.register(_stop)
    found[0].check_alive()
    found[1].check_alive()
    return found


def running_network(kube: KubeCluster, node: KubeNode, root: Path, tag: str) -> KubeNetwork:
    """The example as a network whose pods run on ``node``: small resources, volumes made for its claims."""
    net = KubeNetwork(root, unique_name(tag), kube, wait_for_ready=True)
    net.write(
        "  chain: {blockInterval: 500ms}",
        "  defaults: {resources: {cpu: 250m, memory: 256Mi}, storage: {size: 1Gi, encrypted: true}}",
        storageClass="encrypted-ssd",
    )
    node.make_volumes(len(net.plan().nodes), "1Gi", "encrypted-ssd")
    return net


def leftovers(kube: KubeCluster, name: str) -> list[str]:
    """Objects that still carry the network's label (``hcops.network``), in the kinds hcops scans."""
    from hcops.providers.kubernetes.objects import SCANNED

    out = []
    for api_version, kind in SCANNED:  # listed across all namespaces
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        low = kind.lower()
        plural = low + "es" if low.endswith("s") else low[:-1] + "ies" if low.endswith("y") else low + "s"
        status, body = kube.get(f"{base}/{plural}?labelSelector=hcops.network%3D{name}")
        if status == 200:
            out += [
                f"{kind} {i['metadata'].get('namespace', '')}/{i['metadata']['name']}"
                for i in json.loads(body).get("items") or ()
            ]
    return out

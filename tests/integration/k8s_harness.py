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

import contextlib
import datetime as dt
import ipaddress
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
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
from tests.integration.requirements import binary

COMPONENT = "kube"
SERVICE_CIDR = "10.96.0.0/24"
READY_TIMEOUT = 90.0


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
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
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
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
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
    paths = {
        name: folder / name
        for name in ("ca.crt", "apiserver.crt", "apiserver.key", "sa.key", "sa.pub", "tokens.csv")
    }
    paths["ca.crt"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["apiserver.crt"].write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    paths["apiserver.key"].write_bytes(_pem_key(key))
    paths["sa.key"].write_bytes(_pem_key(sa_key))
    paths["sa.pub"].write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    # token,user,uid,"group1,group2": the admin and the two controllers are cluster admins.
    tokens = {
        user: secrets.token_hex(16)
        for user in ("admin", "system:kube-controller-manager", "system:kube-scheduler")
    }
    paths["tokens.csv"].write_text(
        "".join(f'{tok},{user},uid-{i},"system:masters"\n' for i, (user, tok) in enumerate(tokens.items()))
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
        kube = {"namespace": self.name, "context": self.cluster.context,
                "waitForReady": "true" if self.wait_for_ready else "false", **settings}
        flow = ", ".join(f"{k}: {v}" for k, v in kube.items())
        lines = [f"metadata: {{name: {self.name}}}", "spec:",
                 f"  provider: {{type: kubernetes, kubernetes: {{{flow}}}}}", *extra]
        (env / f"{ENV}.yaml").write_text("\n".join(lines) + "\n")
        return self

    def plan(self) -> NetworkPlan:
        return build_plan(load_spec(self.spec, ENV), self.state_dir)

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig), "COLUMNS": "200"}

    def hcops(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
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
            cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root, env=self.env()
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

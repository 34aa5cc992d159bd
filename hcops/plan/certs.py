"""TLS for the nodes' RPC: one certificate authority per network and one server certificate per node,
kept in the state folder next to the keys (``<state>/<network>/tls/``):

    ca.pem          the CA's private key and certificate (0600): signs the server certificates
    ca.crt          the CA's certificate alone: what clients trust (``curl --cacert``, hcops itself)
    <node>.pem      the node's server key and certificate (0600)

Created on first use and kept: renders stay byte-identical. A server certificate is issued again only
when it no longer fits (its names changed, it is not the current CA's, its key does not match) or when
``renew`` is asked for (``hcops certs rotate``). Its subject alternative names are every name and address
by which the node's RPC is reached under any target: the node name (Docker hostname and alias), the
container name, the Kubernetes pod and service DNS names, the node's address on the consortium network,
and 127.0.0.1/localhost (the published port, and the health probe inside the container).

The folder and files follow ``hcops.fsutil`` like the keys: no links, owned by the user, closed to others,
written atomically; private keys are never returned in a repr, logged, or rendered outside key folders.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hcops.clock import now
from hcops.errors import InvalidInput
from hcops.fsutil import private_dir, read_file, write_private
from hcops.plan import cometbft

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    from hcops.plan.desired import NetworkPlan, NodePlan

TLS_DIR = "tls"
CA_FILE = "ca.pem"
CA_CERT_FILE = "ca.crt"
CA_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=365)
BACKDATE = dt.timedelta(hours=1)  # a node whose clock is slightly behind still accepts a fresh certificate
EXPIRY_WARNING = dt.timedelta(days=30)  # the audit warns this long before a server certificate expires
_LOCK = threading.Lock()


@dataclass(frozen=True)
class NodeCertificate:
    """A node's server certificate as anyone may see it; the private key stays in the store."""

    node: str
    cert_pem: bytes = field(repr=False)
    not_after: dt.datetime
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    fingerprint: str  # SHA-256 of the DER certificate, hex


def tls_enabled(plan: NetworkPlan) -> bool:
    return bool(plan.consortium.spec.network.rpc.tls)


def rpc_names(plan: NetworkPlan, node: NodePlan) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(DNS names, IP addresses) by which ``node``'s RPC is reached, in a fixed order."""
    name, ns = node.name, plan.kube_namespace(node)
    pod = f"{name}-0"
    dns = (
        name,  # Docker hostname and network alias
        f"{plan.name}-{name}",  # the container's name (hcops.providers.docker.containers.container_name)
        pod, f"{pod}.{name}", f"{pod}.{name}.{ns}.svc", cometbft.kube_host(name, ns),
        f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local",
        "localhost",
    )
    return tuple(dict.fromkeys(dns)), ("127.0.0.1", node.docker_ip)


# ------------------------------------------------------------------------------------------- crypto
def _new_key() -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())  # P-256: what Go's TLS (CometBFT) and OpenSSL agree on


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _now() -> dt.datetime:
    return now().replace(microsecond=0)


def _issue_ca(network: str) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hcops"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"hcops RPC CA of network {network}")])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return _key_pem(key), _cert_pem(cert)


def _issue_server(node: str, dns: tuple[str, ...], ips: tuple[str, ...], ca_key: ec.EllipticCurvePrivateKey,
                  ca_cert: x509.Certificate) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = _new_key()
    now = _now()
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + SERVER_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                         content_commitment=False, data_encipherment=False,
                                         key_agreement=False, crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return _key_pem(key), _cert_pem(cert)


def _split(data: bytes, path: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A file holding one private key and one certificate, both PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_private_key(data, password=None)
        cert = x509.load_pem_x509_certificate(data[data.index(b"-----BEGIN CERTIFICATE-----"):])
    except ValueError:
        key = None
    if not isinstance(key, ec.EllipticCurvePrivateKey):  # the content is never echoed: it is key material
        raise InvalidInput(f"{path}: expected a PEM private key (EC P-256) followed by its certificate",
                           hint=f"remove {path} to have hcops issue a new one (then `hcops apply`)")
    return key, cert


def _names(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    return set(ext.get_values_for_type(x509.DNSName)), {str(i) for i in ext.get_values_for_type(x509.IPAddress)}


def _fits(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, ca: x509.Certificate, dns: tuple[str, ...],
          ips: tuple[str, ...]) -> bool:
    """Whether a stored server certificate still serves: its key, issued by this CA, for exactly these names."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*raw) != cert.public_key().public_bytes(*raw):
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return _names(cert) == (set(dns), set(ips))


def _describe(node: str, cert: x509.Certificate) -> NodeCertificate:
    from cryptography.hazmat.primitives import serialization

    der = cert.public_bytes(serialization.Encoding.DER)
    dns, ips = _names(cert)
    return NodeCertificate(node=node, cert_pem=_cert_pem(cert), not_after=cert.not_valid_after_utc,
                           dns_names=tuple(sorted(dns)), ip_addresses=tuple(sorted(ips)),
                           fingerprint=hashlib.sha256(der).hexdigest())


# -------------------------------------------------------------------------------------------- store
class CertStore:
    """``<state>/<network>/tls/``: the network's CA and its nodes' server certificates."""

    def __init__(self, state_dir: Path, network: str) -> None:
        self.folder = state_dir / TLS_DIR
        self.network = network

    @property
    def ca_cert_path(self) -> Path:
        return self.folder / CA_CERT_FILE

    def _ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        path = self.folder / CA_FILE
        private_dir(self.folder)
        data = read_file(path, private=True)
        if data is None:
            key_pem, cert_pem = _issue_ca(self.network)
            write_private(path, key_pem + cert_pem, replace=False)  # another hcops may have won: read its CA
            data = read_file(path, private=True) or b""
        key, cert = _split(data, path)
        public = _cert_pem(cert)
        if read_file(self.ca_cert_path) != public:  # kept next to it for clients, never the key
            write_private(self.ca_cert_path, public, mode=0o644)
        return key, cert

    def ca_pem(self) -> bytes:
        with _LOCK:
            return _cert_pem(self._ca()[1])

    def certificate(self, node: str, dns: tuple[str, ...], ips: tuple[str, ...], *,
                    renew: bool = False) -> NodeCertificate:
        """The node's server certificate, issued when missing, no longer fitting, or ``renew``."""
        with _LOCK:
            ca_key, ca = self._ca()
            path = self.folder / f"{node}.pem"
            data = read_file(path, private=True)
            if data is not None and not renew:
                key, cert = _split(data, path)
                if _fits(key, cert, ca, dns, ips):
                    return _describe(node, cert)
            key_pem, cert_pem = _issue_server(node, dns, ips, ca_key, ca)
            write_private(path, key_pem + cert_pem)
            return _describe(node, _split(key_pem + cert_pem, path)[1])

    def private_key(self, node: str) -> bytes:
        """The node's server key, PEM: for handing to the node only. Never log or render it elsewhere."""
        path = self.folder / f"{node}.pem"
        data = read_file(path, private=True)
        if data is None:
            raise InvalidInput(f"{path}: missing", hint="run `hcops render` or `hcops apply` to issue it")
        return _key_pem(_split(data, path)[0])


# ----------------------------------------------------------------------------------- plan helpers
_CACHE: dict[tuple[str, str], tuple[tuple[tuple[str, ...], tuple[str, ...]], NodeCertificate]] = {}


def store(plan: NetworkPlan) -> CertStore:
    return CertStore(plan.state_dir, plan.name)


def node_certificate(plan: NetworkPlan, node: NodePlan) -> NodeCertificate:
    """The node's server certificate for this plan (read once per process, issued when it does not fit)."""
    names = rpc_names(plan, node)
    key = (str(plan.state_dir), node.name)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == names:
        return hit[1]
    cert = store(plan).certificate(node.name, *names)
    _CACHE[key] = (names, cert)
    return cert


def renew(plan: NetworkPlan, node: NodePlan) -> NodeCertificate:
    """Issue the node a new server key and certificate (same CA): ``hcops certs rotate``."""
    names = rpc_names(plan, node)
    cert = store(plan).certificate(node.name, *names, renew=True)
    _CACHE[(str(plan.state_dir), node.name)] = (names, cert)
    return cert


def ca_pem(plan: NetworkPlan) -> bytes:
    return store(plan).ca_pem()


def client_context(plan: NetworkPlan) -> ssl.SSLContext | None:
    """What hcops verifies the nodes' RPC with: the network CA only (no system roots). None without TLS."""
    if not tls_enabled(plan):
        return None
    return server_verifier(ca_pem(plan))


def server_verifier(ca: bytes) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=ca.decode("ascii"))  # cadata: the system roots are not loaded
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx

"""Prometheus metrics of the continuous audit (own registry) and a small HTTP server for them and
``/healthz``, bound where ``--serve`` says (127.0.0.1 by default)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_client import Counter as PromCounter

from hcops.audit.catalogue import EVIDENCE_CLASSES
from hcops.audit.sweep import Sweep
from hcops.errors import EnvironmentProblem, InvalidInput


class AuditMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.findings = Gauge(
            "hcops_findings",
            "Open audit findings of the last sweep.",
            ["severity", "control", "rule"],
            registry=self.registry,
        )
        self.height = Gauge(
            "hcops_node_height", "Latest block height each node reports.", ["node"], registry=self.registry
        )
        self.up = Gauge(
            "hcops_node_up", "1 when the node runs and its RPC answers.", ["node"], registry=self.registry
        )
        self.sweep_seconds = Gauge(
            "hcops_audit_sweep_seconds", "Wall time of the last audit sweep.", registry=self.registry
        )
        self.last_success = Gauge(
            "hcops_audit_last_success_timestamp",
            "Unix time the last sweep was recorded.",
            registry=self.registry,
        )
        self.sweeps = Gauge("hcops_audit_sweeps", "Sweeps recorded since start.", registry=self.registry)
        self.evidence = Gauge(
            "hcops_control_evidence",
            "How each HIPAA control is known after the last sweep: 1 for its evidence class (verified, attested, "
            "declared, none), 0 for the others.",
            ["control", "evidence"],
            registry=self.registry,
        )
        # Backups (hcops.backup): from the fact document's ``backup`` section, i.e. the audit log's records,
        # so backups run by cron, by hand or by the watch all count. Alert on
        # time() - hcops_backup_last_success_timestamp > 2 x the schedule's interval (a missed run).
        self.backup_last_success = Gauge(
            "hcops_backup_last_success_timestamp",
            "Unix time of the last successful backup recorded in the audit log (0: none).",
            registry=self.registry,
        )
        self.backup_failures = PromCounter(
            "hcops_backup_failures", "Failed backup runs recorded in the audit log.", registry=self.registry
        )
        self._backup_failures_seen = 0
        self._lock = threading.Lock()
        self.last_success_monotonic: float | None = None

    def observe(self, sweep: Sweep) -> None:
        with self._lock:
            self.findings.clear()
            counts = Counter((f.severity, f.control, f.id) for f in sweep.report.findings)
            for (severity, control, rule), n in counts.items():
                self.findings.labels(severity=severity, control=control, rule=rule).set(n)
            self.height.clear()
            self.up.clear()
            for n in sweep.facts["nodes"]:
                self.up.labels(node=n["name"]).set(1 if n["up"] else 0)
                if isinstance(n["rpc"]["height"], int):
                    self.height.labels(node=n["name"]).set(n["rpc"]["height"])
            for control, current in sweep.classes.items():
                for cls in EVIDENCE_CLASSES:
                    self.evidence.labels(control=control, evidence=cls).set(1 if cls == current else 0)
            self._observe_backups(sweep.facts.get("backup"))
            self.sweep_seconds.set(sweep.seconds)
            self.last_success.set(sweep.finished.timestamp())
            self.sweeps.inc()
            self.last_success_monotonic = time.monotonic()

    def _observe_backups(self, backup: Any) -> None:
        if not isinstance(backup, dict):
            return
        last = backup.get("lastSuccessTimeNs")
        self.backup_last_success.set(last / 1e9 if isinstance(last, int) else 0)
        failures = int(backup.get("failures") or 0)
        if failures > self._backup_failures_seen:  # a counter only goes up: add what is new in the log
            self.backup_failures.inc(failures - self._backup_failures_seen)
        self._backup_failures_seen = max(self._backup_failures_seen, failures)

    def text(self) -> bytes:
        with self._lock:
            return generate_latest(self.registry)


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InvalidInput(f"--serve expects HOST:PORT (e.g. 127.0.0.1:9464), got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class MetricsServer:
    """``/metrics`` and ``/healthz`` (200 while the last sweep is younger than ``stale_after`` seconds)."""

    def __init__(self, metrics: AuditMetrics, listen: str, stale_after: float) -> None:
        host, port = parse_listen(listen)
        handler = _handler(metrics, stale_after)
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot serve metrics on {listen}: {exc.strerror or exc}") from None
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="hcops-metrics", daemon=True)

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{host!s}:{port}"

    def __enter__(self) -> MetricsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(metrics: AuditMetrics, stale_after: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, metrics.text(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                last = metrics.last_success_monotonic
                fresh = last is not None and time.monotonic() - last <= stale_after
                status = 200 if fresh or last is None else 503
                self._send(status, b"ok\n" if status == 200 else b"stale: no recent sweep\n", "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access logs
            pass

    return Handler

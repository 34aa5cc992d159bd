"""The OPA server engine: modules uploaded through OPA's policy API, evaluated over REST.

Modules are stored under ids ``hcops/<file name>`` so that a later evaluation replaces them; ids
under that prefix that the current evaluation does not use are deleted. ``data`` is written key by
key at the top of OPA's data document. The server is assumed to serve one hcops gate at a time:
two evaluations against the same server at once would replace each other's modules.

Fails closed: an unreachable server is an EnvironmentProblem, a compile or evaluation error an
InvalidInput (strict built-in errors are requested), an undefined result an error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
from opa_client import OpaClient
from opa_client.errors import (
    ConnectionsError,
    DeleteDataError,
    DeletePolicyError,
    PatchDataError,
    PolicyNotFoundError,
    RegoParseError,
)

from hcops.errors import Diagnostic, EnvironmentProblem, InvalidInput, Location
from hcops.policy.engines.base import (
    ENTRY_FILENAME,
    ENTRY_PACKAGE,
    ENTRY_RULE,
    EngineResult,
    TestCase,
    TestResult,
    TestStatus,
    analyse,
    discover_tests,
    entry_module,
    parse_entry_result,
    run_test_cases,
    verdict_of_test,
)

ENV_URL = "HCOPS_OPA_URL"
ID_PREFIX = "hcops/"
_STRICT = {"strict-builtin-errors": "true"}
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._/-]+")

T = TypeVar("T")


def policy_id(filename: str) -> str:
    """The OPA policy id of a module: ``hcops/`` + the file name made URL-safe."""
    name = _UNSAFE_ID_CHARS.sub("_", filename.replace("\\", "/"))
    parts = [p for p in name.split("/") if p not in ("", ".", "..")]
    return ID_PREFIX + "/".join(parts)


class OpaServerEngine:
    """Evaluates against an OPA server at ``url`` (``http(s)://host[:port]``)."""

    name = "opa"

    def __init__(self, url: str, *, timeout: float = 30.0, token: str | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"invalid OPA URL {url!r}: expected http(s)://host[:port]")
        if parts.path not in ("", "/"):
            raise InvalidInput(f"invalid OPA URL {url!r}: a path prefix is not supported")
        self.url = url.rstrip("/")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self._client = OpaClient(
            host=parts.hostname,
            port=port,
            ssl=parts.scheme == "https",
            timeout=timeout,
            retries=0,
            token=token or os.environ.get("HCOPS_OPA_TOKEN") or None,
        )

    def close(self) -> None:
        self._client.close_connection()

    # ------------------------------------------------------------------ transport
    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except (requests.ConnectionError, requests.Timeout, ConnectionsError) as exc:
            reason = type(exc).__name__
            raise EnvironmentProblem(
                f"OPA server {self.url} is not reachable ({reason})",
                hint=f"start it (opa run --server) or unset --opa-url/{ENV_URL} to use the embedded engine",
            ) from exc

    @staticmethod
    def _response_errors(exc: Exception, ids: Mapping[str, str]) -> list[Diagnostic]:
        body: Any = None
        if isinstance(exc, RegoParseError):
            body = {"message": exc.message, "errors": exc.errors}
        elif isinstance(exc, requests.HTTPError) and exc.response is not None:
            try:
                body = exc.response.json()
            except ValueError:
                body = {"message": exc.response.text[:300]}
        if not isinstance(body, Mapping):
            return [Diagnostic(str(exc)[:300])]
        diags: list[Diagnostic] = []
        for err in body.get("errors") or []:
            if not isinstance(err, Mapping):
                continue
            loc = err.get("location") or {}
            where = None
            if isinstance(loc, Mapping) and loc.get("file"):
                where = Location(ids.get(str(loc["file"]), str(loc["file"])),
                                 int(loc.get("row") or 1), int(loc.get("col") or 1))
            code = err.get("code")
            diags.append(Diagnostic(f"{err.get('message', 'error')}" + (f" [{code}]" if code else ""),
                                    location=where))
        if not diags:
            diags.append(Diagnostic(str(body.get("message") or exc)[:300]))
        return diags

    # ------------------------------------------------------------------ state on the server
    def _sync_policies(self, modules: Mapping[str, str]) -> dict[str, str]:
        """Upload ``modules`` (unchanged ones are skipped), delete stale ``hcops/`` ids.

        Returns id -> file name. Uploads are retried in passes so that modules depending on one
        another compile in any order.
        """
        ids = {policy_id(name): name for name in modules}
        if len(ids) != len(modules):
            raise InvalidInput("two policy files map to the same OPA policy id; rename one")
        existing = set(self._call(self._client.get_policies_list))
        pending_upload: dict[str, str] = {}
        for pid, name in ids.items():
            if pid in existing:
                try:
                    current = self._call(self._client.get_policy, pid)
                except PolicyNotFoundError:
                    current = {}
                if current.get("result", {}).get("raw") == modules[name]:
                    continue
            pending_upload[pid] = name
        pending_delete = {pid for pid in existing if pid.startswith(ID_PREFIX) and pid not in ids}

        errors: dict[str, Exception] = {}
        while pending_upload or pending_delete:
            progress = False
            errors = {}
            for pid in sorted(pending_delete):
                try:
                    self._call(self._client.delete_policy, pid)
                    pending_delete.discard(pid)
                    progress = True
                except (DeletePolicyError, requests.HTTPError, ValueError) as exc:
                    errors[pid] = exc
            for pid in sorted(pending_upload):
                try:
                    self._call(self._client.update_policy_from_string, modules[pending_upload[pid]], pid,
                               rego_compat=False)
                    del pending_upload[pid]
                    progress = True
                except (RegoParseError, requests.HTTPError, ValueError) as exc:
                    errors[pid] = exc
            if not progress:
                break
        if errors:
            diags: list[Diagnostic] = []
            for problem in errors.values():
                for d in self._response_errors(problem, ids):
                    if d not in diags:
                        diags.append(d)
            raise InvalidInput("OPA rejected the policies", diags)
        return ids

    def _put_data(self, data: Mapping[str, Any]) -> None:
        for key in sorted(data):
            try:
                self._call(self._client.patch_data, quote(key, safe=""),
                           [{"op": "add", "path": "/", "value": data[key]}])
            except (PatchDataError, requests.HTTPError, ValueError) as exc:
                raise InvalidInput(f"OPA rejected policy data key {key!r}",
                                   self._response_errors(exc, {})) from exc

    def _query(self, path: str, input: Any, ids: Mapping[str, str]) -> tuple[bool, Any]:
        package, _, rule = path.rpartition(".")
        try:
            body = self._call(self._client.query_rule, input, package, rule, query_params=_STRICT)
        except requests.HTTPError as exc:
            raise InvalidInput("policy evaluation failed on the OPA server",
                               self._response_errors(exc, ids)) from exc
        if not isinstance(body, Mapping) or "result" not in body:
            return False, None
        return True, body["result"]

    def clear(self) -> None:
        """Delete every ``hcops/`` policy from the server (the data stays)."""
        for pid in self._call(self._client.get_policies_list):
            if pid.startswith(ID_PREFIX):
                try:
                    self._call(self._client.delete_policy, pid)
                except (DeletePolicyError, DeleteDataError, requests.HTTPError):
                    continue

    # ------------------------------------------------------------------ Engine
    def evaluate(
        self, modules: Mapping[str, str], input: dict[str, Any], data: dict[str, Any]
    ) -> EngineResult:
        policy = {k: v for k, v in modules.items() if not k.endswith("_test.rego")}
        analysis = analyse(policy)
        policy[ENTRY_FILENAME] = entry_module(analysis)
        self._put_data(data)
        ids = self._sync_policies(policy)
        defined, value = self._query(f"{ENTRY_PACKAGE}.{ENTRY_RULE}", input, ids)
        if not defined:
            raise InvalidInput("policy evaluation on the OPA server returned no result")
        return parse_entry_result(self.name, analysis, value)

    def run_tests(self, modules: Mapping[str, str], data: dict[str, Any]) -> list[TestResult]:
        analysis = analyse(modules)
        self._put_data(data)
        ids = self._sync_policies(modules)

        def query(case: TestCase) -> tuple[TestStatus, str]:
            try:
                defined, value = self._query(".".join(case.segments) + "." + case.name, None, ids)
            except InvalidInput as exc:
                detail = "; ".join(d.message for d in exc.diagnostics) or exc.message
                return "error", detail
            return verdict_of_test(defined, value)

        return run_test_cases(discover_tests(analysis), query)

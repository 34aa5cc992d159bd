"""The OPA server engine: modules uploaded through OPA's policy API, evaluated over REST.

Modules are stored under ids ``hcops/<file name>`` so that a later evaluation replaces them; ids
under that prefix that the current evaluation does not use are deleted. ``data`` is written key by
key at the top of OPA's data document. The server is assumed to serve one hcops gate at a time:
two evaluations against the same server at once would replace each other's modules.

After an upload the pack's digest is stored at ``data.hcops_engine_pack.digest``; an evaluation whose
modules have that digest skips the policy API altogether (one small GET). Policies and data are managed
through opa-python-client, imported only when the server needs them. The evaluation itself is the hot
path of every gate (an input document of megabytes): its body is serialized once with orjson and sent
on a keep-alive connection of the standard library.

Fails closed: an unreachable server is an EnvironmentProblem, a compile or evaluation error an
InvalidInput (strict built-in errors are requested), an undefined result an error.
"""

from __future__ import annotations

import hashlib
import http.client
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

import orjson

if TYPE_CHECKING:
    from opa_client import OpaClient

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
from hcops.settings import OPA_URL, Settings, resolve

ENV_URL = OPA_URL
ID_PREFIX = "hcops/"
PACK_DATA_KEY = "hcops_engine_pack"
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

    name = "opa-server"

    def __init__(self, url: str, *, timeout: float = 30.0, token: str | None = None,
                 settings: Settings | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"invalid OPA URL {url!r}: expected http(s)://host[:port]")
        if parts.path not in ("", "/"):
            raise InvalidInput(f"invalid OPA URL {url!r}: a path prefix is not supported")
        self.url = url.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._https = parts.scheme == "https"
        self._timeout = timeout
        self._token = token or resolve(settings).opa_token
        self._opa: OpaClient | None = None
        self._conn: http.client.HTTPConnection | None = None

    @property
    def _client(self) -> OpaClient:
        """opa-python-client, for the policy and data APIs (created on first use: it is slow to import)."""
        if self._opa is None:
            from opa_client import OpaClient

            self._opa = OpaClient(host=self._host, port=self._port, ssl=self._https, timeout=self._timeout,
                                  retries=0, token=self._token)
        return self._opa

    def cancel(self) -> None:
        """The server's evaluation ends at the request timeout; nothing to stop here."""

    def close(self) -> None:
        if self._opa is not None:
            self._opa.close_connection()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ------------------------------------------------------------------ transport
    def _unreachable(self, exc: BaseException) -> EnvironmentProblem:
        return EnvironmentProblem(
            f"OPA server {self.url} is not reachable ({type(exc).__name__})",
            hint=f"start it (opa run --server) or unset --opa-url/{ENV_URL} to use the default engine",
        )

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        import requests
        from opa_client.errors import ConnectionsError

        try:
            return fn(*args, **kwargs)
        except (requests.ConnectionError, requests.Timeout, ConnectionsError) as exc:
            raise self._unreachable(exc) from exc

    def _http(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        """One request on the keep-alive connection: (status, decoded JSON body or None)."""
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        for attempt in (1, 2):
            if self._conn is None:
                factory = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
                self._conn = factory(self._host, self._port, timeout=self._timeout)
            try:
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                raw = response.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                self._conn.close()
                self._conn = None
                # a kept-alive connection the server has closed fails once; a second failure is real
                if attempt == 2 or isinstance(exc, TimeoutError | ConnectionRefusedError):
                    raise self._unreachable(exc) from exc
        try:
            return response.status, orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return response.status, {"message": raw[:300].decode("utf-8", "replace")}

    @staticmethod
    def _response_errors(exc: Exception, ids: Mapping[str, str]) -> list[Diagnostic]:
        import requests
        from opa_client.errors import RegoParseError

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
        return OpaServerEngine._body_errors(body, ids, str(exc))

    @staticmethod
    def _body_errors(body: Mapping[str, Any], ids: Mapping[str, str], fallback: str) -> list[Diagnostic]:
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
            diags.append(Diagnostic(str(body.get("message") or fallback)[:300]))
        return diags

    # ------------------------------------------------------------------ state on the server
    def _sync_policies(self, modules: Mapping[str, str]) -> dict[str, str]:
        """Upload ``modules`` (unchanged ones are skipped), delete stale ``hcops/`` ids.

        Returns id -> file name. Uploads are retried in passes so that modules depending on one
        another compile in any order.
        """
        from opa_client.errors import DeletePolicyError, PolicyNotFoundError, RegoParseError
        from requests import HTTPError

        ids = self._ids(modules)
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
        if pending_upload or pending_delete:
            self._http("DELETE", f"/v1/data/{PACK_DATA_KEY}")  # the stored digest no longer holds

        errors: dict[str, Exception] = {}
        while pending_upload or pending_delete:
            progress = False
            errors = {}
            for pid in sorted(pending_delete):
                try:
                    self._call(self._client.delete_policy, pid)
                    pending_delete.discard(pid)
                    progress = True
                except (DeletePolicyError, HTTPError, ValueError) as exc:
                    errors[pid] = exc
            for pid in sorted(pending_upload):
                try:
                    self._call(self._client.update_policy_from_string, modules[pending_upload[pid]], pid,
                               rego_compat=False)
                    del pending_upload[pid]
                    progress = True
                except (RegoParseError, HTTPError, ValueError) as exc:
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

    @staticmethod
    def _ids(modules: Mapping[str, str]) -> dict[str, str]:
        ids = {policy_id(name): name for name in modules}
        if len(ids) != len(modules):
            raise InvalidInput("two policy files map to the same OPA policy id; rename one")
        return ids

    @staticmethod
    def _digest(modules: Mapping[str, str]) -> str:
        h = hashlib.sha256()
        for name in sorted(modules):
            h.update(orjson.dumps([name, modules[name]]))
        return h.hexdigest()

    def _stored_digest(self) -> str | None:
        status, body = self._http("GET", f"/v1/data/{PACK_DATA_KEY}/digest")
        value = body.get("result") if status == 200 and isinstance(body, Mapping) else None
        return value if isinstance(value, str) else None

    def _ensure_pack(self, modules: Mapping[str, str], *, force: bool = False) -> dict[str, str]:
        """The modules on the server (uploaded unless the server holds exactly this pack); id -> file."""
        digest = self._digest(modules)
        if not force and self._stored_digest() == digest:
            return self._ids(modules)
        ids = self._sync_policies(modules)
        status, body = self._http("PUT", f"/v1/data/{PACK_DATA_KEY}", orjson.dumps({"digest": digest}))
        if status >= 300:
            raise InvalidInput("the OPA server refused to store the policy pack's digest",
                               self._body_errors(body if isinstance(body, Mapping) else {}, {}, f"HTTP {status}"))
        return ids

    def _put_data(self, data: Mapping[str, Any]) -> None:
        if not data:
            return
        from opa_client.errors import PatchDataError
        from requests import HTTPError

        for key in sorted(data):
            try:
                self._call(self._client.patch_data, quote(key, safe=""),
                           [{"op": "add", "path": "/", "value": data[key]}])
            except (PatchDataError, HTTPError, ValueError) as exc:
                raise InvalidInput(f"OPA rejected policy data key {key!r}",
                                   self._response_errors(exc, {})) from exc

    def _query(self, path: str, input: Any, ids: Mapping[str, str]) -> tuple[bool, Any]:
        url = "/v1/data/" + "/".join(quote(part, safe="") for part in path.split(".")) + "?" + "&".join(
            f"{k}={v}" for k, v in _STRICT.items())
        status, body = self._http("POST", url, orjson.dumps({"input": input}))
        if status >= 300:
            raise InvalidInput("policy evaluation failed on the OPA server",
                               self._body_errors(body if isinstance(body, Mapping) else {}, ids, f"HTTP {status}"))
        if not isinstance(body, Mapping) or "result" not in body:
            return False, None
        return True, body["result"]

    def clear(self) -> None:
        """Delete every ``hcops/`` policy from the server (the data stays)."""
        from opa_client.errors import DeleteDataError, DeletePolicyError
        from requests import HTTPError

        self._http("DELETE", f"/v1/data/{PACK_DATA_KEY}")
        for pid in self._call(self._client.get_policies_list):
            if pid.startswith(ID_PREFIX):
                try:
                    self._call(self._client.delete_policy, pid)
                except (DeletePolicyError, DeleteDataError, HTTPError):
                    continue

    # ------------------------------------------------------------------ Engine
    def evaluate(
        self, modules: Mapping[str, str], input: dict[str, Any], data: dict[str, Any]
    ) -> EngineResult:
        policy = {k: v for k, v in modules.items() if not k.endswith("_test.rego")}
        analysis = analyse(policy)
        policy[ENTRY_FILENAME] = entry_module(analysis)
        self._put_data(data)
        ids = self._ensure_pack(policy)
        defined, value = self._query(f"{ENTRY_PACKAGE}.{ENTRY_RULE}", input, ids)
        if not defined:  # the pack was changed behind the stored digest's back: upload it again
            ids = self._ensure_pack(policy, force=True)
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

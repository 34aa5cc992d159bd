"""A small typed layer over the official client's ``ApiClient``: discovery, get/list, server-side apply
(``fieldManager=hcops``, optionally dry-run or forced) and delete of any kind as plain dicts.

Plain dicts (not the generated models) because server-side apply and the drift comparison work on the
object exactly as the API server stores it, and the generated models drop fields they do not know.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from hcops.errors import EnvironmentProblem

FIELD_MANAGER = "hcops"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML: the body is sent as JSON
REQUEST_TIMEOUT = 30.0

Obj = dict[str, Any]


class ApiError(Exception):
    """A non-2xx answer of the API server, with its ``Status`` reason and causes."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        causes: tuple[Mapping[str, Any], ...] = (),
        method: str = "",
        path: str = "",
    ) -> None:
        super().__init__(f"{method} {path}: HTTP {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = causes
        self.method = method
        self.path = path

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


@dataclass(frozen=True)
class ResourceType:
    group_version: str  # "v1" or "apps/v1"
    kind: str
    plural: str
    namespaced: bool

    def collection(self, namespace: str | None) -> str:
        base = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        return f"{base}/{self.plural}"

    def item(self, name: str, namespace: str | None) -> str:
        return f"{self.collection(namespace)}/{quote(name, safe='')}"


@dataclass(frozen=True, order=True)
class Ref:
    """Identifies one object: ``StatefulSet regional-health-net/stmary-val-0``."""

    api_version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Ref:
        meta = obj.get("metadata") or {}
        return cls(
            str(obj.get("apiVersion", "")),
            str(obj.get("kind", "")),
            str(meta.get("namespace") or ""),
            str(meta.get("name", "")),
        )

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


class KubeApi:
    """The API server of one cluster, reached through an authenticated ``ApiClient``."""

    def __init__(self, client: ApiClient, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self.client = client
        self.timeout = timeout
        self._types: dict[tuple[str, str], ResourceType] = {}
        self._discovered: set[str] = set()
        self._lock = threading.Lock()

    @property
    def server(self) -> str:
        return str(self.client.configuration.host)

    # ------------------------------------------------------------------ raw requests
    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> Any:
        """One request; the decoded JSON answer (``None`` when empty). Raises :class:`ApiError`."""
        return self.exchange(
            method, path, query=query, body=body, content_type=content_type, timeout=timeout
        )[1]

    def exchange(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        """One request; its HTTP status (2xx) and decoded JSON answer. Raises :class:`ApiError`."""
        params = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items()]
        headers = {"Accept": "application/json", "Content-Type": content_type}
        _, url, headers, body, _ = self.client.param_serialize(
            method, path, query_params=params, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        try:
            resp = self.client.call_api(method, url, headers, body, _request_timeout=timeout or self.timeout)
            data = resp.read()
            status = int(resp.status)
        except ApiException as exc:  # raised by the REST layer for SSL or proxy problems
            raise EnvironmentProblem(f"Kubernetes API {self.server}: {exc.reason or exc}") from None
        except (HTTPError, OSError) as exc:
            raise EnvironmentProblem(
                f"Kubernetes API {self.server} is not reachable: {exc}",
                hint="check the kubeconfig context (provider.kubernetes.context)",
            ) from None
        if 200 <= status < 300:
            return status, json.loads(data) if data else None
        raise _error(status, data, method, path)

    # ------------------------------------------------------------------ discovery
    def resource_type(self, api_version: str, kind: str) -> ResourceType:
        key = (api_version, kind)
        found = self._types.get(key)
        if found is None:
            with self._lock:
                if api_version not in self._discovered:
                    path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
                    try:
                        doc = self.request("GET", path)
                    except ApiError as exc:
                        if not exc.not_found:
                            raise
                        doc = {}
                    for r in doc.get("resources") or ():
                        if "/" in r.get("name", ""):
                            continue  # subresources
                        self._types[(api_version, r["kind"])] = ResourceType(
                            api_version, r["kind"], r["name"], bool(r.get("namespaced"))
                        )
                    self._discovered.add(api_version)
            found = self._types.get(key)
        if found is None:
            raise EnvironmentProblem(f"the cluster at {self.server} does not serve {kind} ({api_version})")
        return found

    # ------------------------------------------------------------------ verbs
    def get(self, ref: Ref) -> Obj | None:
        rt = self.resource_type(ref.api_version, ref.kind)
        try:
            obj: Obj = self.request("GET", rt.item(ref.name, ref.namespace or None))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        return obj

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        rt = self.resource_type(api_version, kind)
        query: dict[str, str | int | bool] = {}
        if selector:
            query["labelSelector"] = selector
        if field_selector:
            query["fieldSelector"] = field_selector
        items: list[Obj] = []
        for page in self._pages(rt.collection(namespace), query):
            for item in page.get("items") or ():
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                items.append(item)
        return items

    def _pages(self, path: str, query: dict[str, str | int | bool]) -> Iterator[Obj]:
        query = {**query, "limit": 500}
        while True:
            try:
                page: Obj = self.request("GET", path, query=query)
            except ApiError as exc:
                if exc.not_found:
                    return  # e.g. the namespace does not exist
                raise
            yield page
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return
            query["continue"] = token

    def apply(self, obj: Mapping[str, Any], *, dry_run: bool = False, force: bool = False) -> Obj:
        """Server-side apply as field manager ``hcops``; 409 (field conflict) raises :class:`ApiError`."""
        return self.apply_created(obj, dry_run=dry_run, force=force)[0]

    def apply_created(
        self, obj: Mapping[str, Any], *, dry_run: bool = False, force: bool = False
    ) -> tuple[Obj, bool]:
        """:meth:`apply`, and whether it created the object (HTTP 201)."""
        ref = Ref.of(obj)
        rt = self.resource_type(ref.api_version, ref.kind)
        query: dict[str, str | int | bool] = {"fieldManager": FIELD_MANAGER, "force": force}
        if dry_run:
            query["dryRun"] = "All"
        status, result = self.exchange(
            "PATCH", rt.item(ref.name, ref.namespace or None), query=query, body=obj, content_type=APPLY_PATCH
        )
        return result, status == 201

    def delete(self, ref: Ref, *, propagation: str = "Background") -> bool:
        """Delete; False when it was already gone."""
        rt = self.resource_type(ref.api_version, ref.kind)
        try:
            self.request(
                "DELETE",
                rt.item(ref.name, ref.namespace or None),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation},
            )
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True

    def create(
        self, api_version: str, kind: str, obj: Mapping[str, Any], namespace: str | None = None
    ) -> Obj:
        rt = self.resource_type(api_version, kind)
        result: Obj = self.request("POST", rt.collection(namespace), body=obj)
        return result


def _error(status: int, data: bytes, method: str, path: str) -> ApiError:
    try:
        doc = json.loads(data) if data else {}
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    details = doc.get("details") or {}
    causes = tuple(c for c in details.get("causes") or () if isinstance(c, dict))
    message = str(doc.get("message") or data[:300].decode(errors="replace") or "no message")
    return ApiError(status, str(doc.get("reason") or ""), message, causes, method, path)

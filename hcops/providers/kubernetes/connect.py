"""Reaching the cluster: the kubeconfig context named in the spec, else the kubeconfig's current context,
else the in-cluster service account."""

from __future__ import annotations

from pathlib import Path

from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.config.config_exception import ConfigException

from hcops.errors import EnvironmentProblem
from hcops.settings import Settings, resolve


def kubeconfig_path(settings: Settings | None = None) -> Path | None:
    """The first file of ``$KUBECONFIG``, else ``~/.kube/config`` if present."""
    for part in resolve(settings).kubeconfig:
        if part.expanduser().is_file():
            return part.expanduser()
    default = Path("~/.kube/config").expanduser()
    return default if default.is_file() else None


def connect(context: str | None = None, kubeconfig: Path | None = None, settings: Settings | None = None
            ) -> ApiClient:
    """An authenticated client; raises :class:`EnvironmentProblem` saying what was tried."""
    settings = resolve(settings)
    path = kubeconfig or kubeconfig_path(settings)
    if path is not None:
        try:
            return kube_config.new_client_from_config(
                config_file=str(path), context=context, persist_config=False
            )
        except (ConfigException, OSError, ValueError, KeyError) as exc:
            raise EnvironmentProblem(
                f"kubeconfig {path}: {exc}",
                hint="set provider.kubernetes.context (or an organization's "
                     "spec.organizations[].kubernetes.context) to one of its contexts",
            ) from None
    if context:
        raise EnvironmentProblem(
            f"kubeconfig context '{context}' requested but no kubeconfig was found",
            hint="set KUBECONFIG or create ~/.kube/config",
        )
    if settings.in_cluster:
        cfg = Configuration()
        try:
            kube_config.load_incluster_config(client_configuration=cfg)
        except ConfigException as exc:
            raise EnvironmentProblem(f"in-cluster configuration: {exc}") from None
        return ApiClient(cfg)
    raise EnvironmentProblem(
        "no Kubernetes cluster configured: no kubeconfig and not running in a cluster",
        hint="set KUBECONFIG (and provider.kubernetes.context), or run hcops in a pod",
    )

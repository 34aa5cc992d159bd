"""Settings from the environment: every variable hcops reads, resolved and checked in one place.

The CLI builds one ``Settings`` (``Settings.from_env(os.environ)``) before any command runs and hands it down
through the use cases, so that no module below reads the environment and a bad value is refused once,
naming its variable, rather than wherever it happens to be used first. Functions that take
``settings: Settings | None`` treat None as "the environment as it is now" (``resolve``): the CLI always
passes its own, but tests and scripts that call them directly keep the meaning of the variables.

Variables handed on to child processes (ansible-runner, the OPA binary) are theirs, not settings.

This module is at the bottom layer: it imports nothing from hcops but ``hcops.errors`` and ``hcops.resources``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from hcops.errors import InvalidInput
from hcops.resources import bundled

STATE_DIR = "HCOPS_STATE_DIR"
AUDIT_DB = "HCOPS_AUDIT_DB"
CACHE = "HCOPS_CACHE"
POLICY_DIR = "HCOPS_POLICY_DIR"
TEMPLATES_DIR = "HCOPS_TEMPLATES_DIR"
OPA_BIN = "HCOPS_OPA_BIN"
OPA_URL = "HCOPS_OPA_URL"
OPA_TOKEN = "HCOPS_OPA_TOKEN"
ENGINE = "HCOPS_ENGINE"
ENGINE_TIMEOUT = "HCOPS_ENGINE_TIMEOUT"
ENGINE_MEMORY_MB = "HCOPS_ENGINE_MEMORY_MB"
MRN_PATTERN = "HCOPS_MRN_PATTERN"
KUBECONFIG = "KUBECONFIG"
IN_CLUSTER = "KUBERNETES_SERVICE_HOST"
MIN_ENGINE_TIMEOUT = 1  # seconds; the --engine-timeout option has the same bounds
MIN_ENGINE_MEMORY_MB = 64

# A control character in a path or URL is never what was meant, and would be written verbatim into
# messages, logs and the configuration hcops generates; the shell makes them easy to paste by accident.
_CONTROL = frozenset(chr(c) for c in (*range(0x20), 0x7F))
_SHOWN = 120  # a hostile value may be megabytes long: the message shows enough to recognise it
N = TypeVar("N", int, float)


@dataclass(frozen=True)
class Settings:
    """What the environment configures; a field left None takes the default its property names."""

    state_dir: Path | None = None  # HCOPS_STATE_DIR (default .hcops); --state-dir overrides it
    audit_db: Path | None = None  # HCOPS_AUDIT_DB (default <state>/<network>/audit.db); --audit-db overrides it
    cache_dir: Path | None = None  # HCOPS_CACHE (default ~/.cache/hcops): tools and compiled policies
    policy_dir: Path | None = None  # HCOPS_POLICY_DIR: another built-in policy pack
    templates_dir: Path | None = None  # HCOPS_TEMPLATES_DIR: another templates folder
    opa_bin: Path | None = None  # HCOPS_OPA_BIN (default $HCOPS_CACHE/bin/opa, then PATH)
    opa_url: str | None = None  # HCOPS_OPA_URL: evaluate with this OPA server
    opa_token: str | None = field(default=None, repr=False)  # HCOPS_OPA_TOKEN: that server's bearer token
    engine: str | None = None  # HCOPS_ENGINE (default auto); --engine overrides it
    engine_timeout: float | None = None  # HCOPS_ENGINE_TIMEOUT, seconds; --engine-timeout overrides it
    engine_memory_mb: int | None = None  # HCOPS_ENGINE_MEMORY_MB; --engine-memory overrides it
    mrn_pattern: str | None = None  # HCOPS_MRN_PATTERN; --mrn-pattern overrides it
    kubeconfig: tuple[Path, ...] = ()  # KUBECONFIG, in order (the first existing file is used)
    in_cluster: bool = False  # KUBERNETES_SERVICE_HOST set: running in a pod
    user: str = ""  # USER, else LOGNAME: who skipped a gate, for the record

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings ``environ`` (default: this process's environment) gives; an empty variable counts
        as unset. Raises ``InvalidInput`` naming the variable when a value is unusable."""
        env = os.environ if environ is None else environ

        def text(name: str) -> str | None:
            return env.get(name) or None

        def path(name: str, *, strip: bool = False) -> Path | None:
            value = text(name)
            if value is not None and strip:
                value = value.strip() or None
            if value is None:
                return None
            _no_control(name, value, "a path")
            return Path(value).expanduser() if strip else Path(value)

        kubeconfig = text(KUBECONFIG) or ""
        _no_control(KUBECONFIG, kubeconfig, "a list of paths")
        return cls(
            state_dir=path(STATE_DIR),
            audit_db=path(AUDIT_DB),
            cache_dir=path(CACHE),
            policy_dir=path(POLICY_DIR, strip=True),
            templates_dir=path(TEMPLATES_DIR),
            opa_bin=path(OPA_BIN, strip=True),
            opa_url=_checked(OPA_URL, text(OPA_URL), "a URL"),
            opa_token=_checked(OPA_TOKEN, text(OPA_TOKEN), "a token", show=False),
            engine=text(ENGINE),
            engine_timeout=_number(ENGINE_TIMEOUT, text(ENGINE_TIMEOUT), "a number of seconds", MIN_ENGINE_TIMEOUT,
                                   float),
            engine_memory_mb=_number(ENGINE_MEMORY_MB, text(ENGINE_MEMORY_MB), "a whole number of MB",
                                     MIN_ENGINE_MEMORY_MB, int),
            mrn_pattern=text(MRN_PATTERN),
            kubeconfig=tuple(Path(p) for p in kubeconfig.split(os.pathsep) if p),
            in_cluster=bool(text(IN_CLUSTER)),
            user=text("USER") or text("LOGNAME") or "",
        )

    def state_root(self) -> Path:
        """The folder of every network's state (keys, state, audit log): ``.hcops`` unless configured."""
        return self.state_dir if self.state_dir is not None else Path(".hcops")

    @property
    def cache(self) -> Path:
        """Tools hcops was given (the OPA and CometBFT binaries) and what it compiled (policy modules)."""
        return self.cache_dir if self.cache_dir is not None else Path.home() / ".cache" / "hcops"

    @property
    def policies(self) -> Path:
        """The built-in policy pack."""
        return self.policy_dir if self.policy_dir is not None else bundled("policies")

    @property
    def templates(self) -> Path:
        """The templates of the render targets, the Ansible playbooks and ``hcops init``."""
        return self.templates_dir if self.templates_dir is not None else bundled("templates")


def resolve(settings: Settings | None) -> Settings:
    """``settings``, or, for a caller that passes none, the environment's as it is now."""
    return settings if settings is not None else Settings.from_env()


def shown(value: str) -> str:
    """``value`` for a message: quoted, escaped, and shortened when very long."""
    short = value if len(value) <= _SHOWN else value[:_SHOWN]
    return repr(short) + (f"... ({len(value)} characters)" if len(value) > _SHOWN else "")


def _no_control(name: str, value: str, what: str, *, show: bool = True) -> None:
    bad = next((c for c in value if c in _CONTROL), None)
    if bad is not None:
        got = f", got {shown(value)}" if show else ""
        raise InvalidInput(f"{name}: {what} must not contain control characters such as {bad!r}{got}",
                           hint=f"set {name} to the intended value, or unset it")


def _checked(name: str, value: str | None, what: str, *, show: bool = True) -> str | None:
    if value is not None:
        _no_control(name, value, what, show=show)
    return value


def _number(name: str, value: str | None, what: str, least: int, parse: Callable[[str], N]) -> N | None:
    if value is None:
        return None
    try:
        number = parse(value)
    except ValueError:
        number = None
    # every comparison with NaN is false: it would pass the range check
    if number is None or math.isnan(number) or number < least:
        raise InvalidInput(f"{name}: expected {what} (at least {least}), got {shown(value)}",
                           hint=f"set {name} to {what}, or unset it")
    return number

"""The Jinja2 environment of the templates (``StrictUndefined``, the YAML-safe filters); loaded only when a
target is rendered from templates, not for the policy input's manifests.

Nothing from the spec reaches a template's text unescaped: values go through ``tojson``/``yaml`` (quoted
scalars, so no value can add a key or a document), comments through ``comment`` (printable ASCII only, so no
value can end the comment line), and Ansible's variables through ``ansible_yaml`` (tagged ``!unsafe``).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import jinja2

from hcops.errors import EnvironmentProblem
from hcops.render.base import TEMPLATES_ENV, Context, to_json, to_yaml, yaml_key

_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" if c < 0x10000 else f"\\U{c:08x}"


def comment(text: str) -> str:
    """``text`` for one YAML comment line: anything but printable ASCII escaped. A line break (also U+0085,
    U+2028, U+2029 for YAML 1.1 readers) would end the comment and start YAML that hcops did not write."""
    return _NOT_PRINTABLE_ASCII.sub(_escape, text)


def _name(text: str) -> str:
    """A file or environment name as it reads best: bare when it is a plain name, else a JSON string."""
    return text if _PLAIN_NAME.fullmatch(text) else to_json(text)


def header(ctx: Context, what: str) -> str:
    """The comment every rendered YAML file starts with; no timestamps, so renders are reproducible. The spec's
    file name is user text like any other (it may hold a newline): it is shown as a JSON string then."""
    loaded = ctx.plan.loaded
    source = _name(loaded.spec_file.name) + (f" (env {_name(loaded.environment)})" if loaded.environment else "")
    return (f"# {comment(what)}\n# Rendered by hcops from {comment(source)}, network {comment(ctx.plan.name)}, "
            f"spec hash {ctx.spec_hash}.\n# Do not edit: change the spec and run `hcops render` again.")


class AnsibleTemplate(str):
    """A variable value hcops writes as an Ansible template on purpose (``{{ inventory_dir }}/files``)."""

    __slots__ = ()


def ansible_yaml(value: Any, indent: int = 0) -> str:
    """Like ``yaml``, for Ansible's inventory and variables: every string but an ``AnsibleTemplate`` is tagged
    ``!unsafe``, so Ansible never evaluates a ``{{ }}`` or ``{% %}`` that came from the spec."""
    if isinstance(value, dict):
        if not value:
            return " {}"
        pad = "\n" + " " * indent
        return "".join(f"{pad}{yaml_key(k)}:{ansible_yaml(v, indent + 2)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        if not value:
            return " []"
        pad = "\n" + " " * indent + "-"
        return "".join(pad + ansible_yaml(v, indent + 2) for v in value)
    if isinstance(value, AnsibleTemplate):
        return " " + to_json(str(value))
    if isinstance(value, str):
        return " !unsafe " + to_json(value)
    return " " + to_json(value)


class _Environment(jinja2.Environment):
    """Templates read plain data: ``obj.key`` looks a dict key up first (no AttributeError round trip)."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


@functools.lru_cache(maxsize=4)
def _environment(folder: str) -> jinja2.Environment:
    env = _Environment(
        loader=jinja2.FileSystemLoader(folder), undefined=jinja2.StrictUndefined, autoescape=False,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = to_json  # jinja's own tojson escapes for HTML
    env.filters["yaml"] = to_yaml
    env.filters["yaml_key"] = yaml_key
    env.filters["comment"] = comment
    env.filters["ansible_yaml"] = ansible_yaml
    return env


def load_template(folder: Path, name: str) -> jinja2.Template:
    try:
        return _environment(str(folder)).get_template(name)
    except jinja2.TemplateNotFound:
        hint = f"set {TEMPLATES_ENV} to the templates folder of an hcops checkout"
        raise EnvironmentProblem(f"template {name} not found in {folder}", hint=hint) from None

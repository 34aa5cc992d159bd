"""The Jinja2 environment of the templates (``StrictUndefined``, the YAML-safe filters); loaded only when a
target is rendered from templates, not for the policy input's manifests."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2

from hcops.errors import EnvironmentProblem
from hcops.render.base import TEMPLATES_ENV, to_json, to_yaml, yaml_key


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
    return env


def load_template(folder: Path, name: str) -> jinja2.Template:
    try:
        return _environment(str(folder)).get_template(name)
    except jinja2.TemplateNotFound:
        hint = f"set {TEMPLATES_ENV} to the templates folder of an hcops checkout"
        raise EnvironmentProblem(f"template {name} not found in {folder}", hint=hint) from None

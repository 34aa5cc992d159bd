"""Use cases of the spec stage: validate, schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hcops.spec.loader import LoadedSpec, load_spec
from hcops.spec.models import Consortium


def validate(spec_file: Path, environment: str | None) -> LoadedSpec:
    return load_spec(spec_file, environment)


def json_schema() -> dict[str, Any]:
    schema = Consortium.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://hcops.dev/schemas/consortium-v1alpha1.json"
    schema["title"] = "hcops Consortium (hcops/v1alpha1)"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"

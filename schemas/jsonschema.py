"""JSON Schema (draft 2020-12) documents: each event kind's, built from the field tables, and each record kind's.

The files in `schemas/json/` are these documents written out
(`footfall schemas export`): `<kind>.schema.json` for the events footfall reads,
`<type>.record.schema.json` for the records it publishes (`schemas.records`, built
from their TypedDicts). Tests check the files are current, that an independent
JSON Schema validator agrees with `parse_event` on many events, and that the
records the worker builds validate.

Examples
--------
>>> doc = kind_schema("pos")
>>> doc["required"]
['event_id', 'store_id', 'kind', 'schema_version', 'ts', 'transaction_id', 'amount', 'items']
>>> doc["properties"]["kind"]
{'const': 'pos'}

"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from footfall.schemas.events import COMMON_FIELDS, KIND_FIELDS, SCHEMA_VERSION
from footfall.schemas.records import RECORD_KINDS, record_schema

__all__ = ["SCHEMA_DIR", "kind_schema", "record_schema_path", "schema_files", "write_schemas"]

SCHEMA_DIR = Path(__file__).parent / "json"
_BASE_ID = "https://footfall.dev/schemas/v{version}/{kind}.schema.json"

_TS = {
    "description": "Event time: ISO-8601 with a UTC offset, or integer epoch milliseconds (UTC).",
    "oneOf": [
        {"type": "string", "format": "date-time", "pattern": "(Z|[+-][0-9]{2}:?[0-9]{2})$", "maxLength": 40},
        {"type": "integer", "minimum": 0},
    ],
}


def kind_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of one event kind."""
    fields = COMMON_FIELDS + KIND_FIELDS[kind]
    properties: dict[str, Any] = {}
    for field in fields:
        prop = field.json_schema()
        if not field.required:
            # An optional member may be absent or null; parse_event reads both as "not given".
            prop["type"] = [prop["type"], "null"]
            if "enum" in prop:
                prop["enum"] = [*prop["enum"], None]
        properties[field.name] = prop
    properties["kind"] = {"const": kind}
    properties["ts"] = _TS
    required = [f.name for f in COMMON_FIELDS if f.required] + ["ts"]
    required += [f.name for f in KIND_FIELDS[kind] if f.required]
    doc: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _BASE_ID.format(version=SCHEMA_VERSION, kind=kind),
        "title": f"footfall {kind} event (schema_version {SCHEMA_VERSION})",
        "type": "object",
        "required": required,
        "properties": properties,
        # Producers may add members of their own; footfall ignores them.
        "additionalProperties": True,
    }
    if kind == "door":
        doc["description"] = (
            "One person (direction) or an interval report (count_in, count_out, interval_s), never both."
        )
        counts = ("count_in", "count_out", "interval_s")
        doc["oneOf"] = [
            {"required": ["direction"], "properties": {"direction": {"type": "string"}},
             "not": {"anyOf": [_given(n) for n in counts]}},
            {"required": list(counts), "properties": {n: {"type": "integer"} for n in counts},
             "not": _given("direction")},
        ]
    if kind == "visit":
        doc["if"] = {"properties": {"action": {"const": "arrive"}}}
        doc["then"] = {"not": _given("dwell_s")}
    return doc


def _given(name: str) -> dict[str, Any]:
    """Present and not null (a null member counts as absent, as in parse_event)."""
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


def record_schema_path(record_type: str, directory: Path = SCHEMA_DIR) -> Path:
    """Where the schema of a record type is written: `<directory>/<type>.record.schema.json`."""
    return directory / f"{record_type}.record.schema.json"


def schema_files(directory: Path = SCHEMA_DIR) -> dict[Path, bytes]:
    """Every schema file's path and its exact bytes: one per event kind, then one per record kind."""
    docs = {directory / f"{kind}.schema.json": kind_schema(kind) for kind in KIND_FIELDS}
    docs |= {record_schema_path(t, directory): record_schema(kind) for t, kind in RECORD_KINDS.items()}
    return {path: orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n" for path, doc in docs.items()}


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write one `<kind>.schema.json` per event kind and one `<type>.record.schema.json` per record kind."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for path, body in schema_files(directory).items():
        path.write_bytes(body)
        paths.append(path)
    return paths

"""`footfall schemas`: write or check the JSON Schema files of the events read and the records published."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from footfall.schemas.jsonschema import SCHEMA_DIR, kind_schema, schema_files, write_schemas

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "schemas",
        help="export or check the JSON Schema files of event and record kinds",
        description="The JSON Schema (draft 2020-12) of each event kind, built from the same field rules the "
        "worker validates with, and of each record kind the worker publishes, built from its TypedDict "
        "(footfall.schemas.records).",
    )
    parser.add_argument("action", choices=("export", "check", "show"),
                        help="export: write DIR/<kind>.schema.json and DIR/<type>.record.schema.json; "
                        "check: exit 1 if the files differ; show KIND: print one")
    parser.add_argument("kind", nargs="?",
                        help="event kind (door, visit, pos, queue, heartbeat) or record type (bucket, live, "
                        "forecast, alert, rollup, rollup_live) for 'show'")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help=f"folder of the files (default {SCHEMA_DIR})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import orjson

    from footfall.schemas.events import KINDS
    from footfall.schemas.records import RECORD_KINDS, record_schema

    if args.action == "show":
        if args.kind in KINDS:
            doc = kind_schema(args.kind)
        elif args.kind in RECORD_KINDS:
            doc = record_schema(args.kind)
        else:
            print(f"footfall schemas show: kind must be an event kind ({', '.join(KINDS)}) or a record type "
                  f"({', '.join(RECORD_KINDS)})", file=sys.stderr)
            return 2
        print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return 0
    if args.action == "export":
        for path in write_schemas(args.dir):
            print(path)
        return 0
    files = schema_files(args.dir)
    stale = [str(path) for path, want in files.items() if not path.exists() or path.read_bytes() != want]
    if stale:
        print("out of date (run 'footfall schemas export'): " + ", ".join(stale), file=sys.stderr)
        return 1
    print(f"{len(files)} schema files up to date in {args.dir} ({len(KINDS)} event kinds, "
          f"{len(RECORD_KINDS)} record kinds)")
    return 0

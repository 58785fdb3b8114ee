"""`footfall schemas`: write or check the JSON Schema files producers in other languages use."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from footfall.schemas.jsonschema import SCHEMA_DIR, kind_schema, write_schemas

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "schemas",
        help="export or check the JSON Schema file of each event kind",
        description="The JSON Schema (draft 2020-12) of each event kind, built from the same field rules the "
        "worker validates with.",
    )
    parser.add_argument("action", choices=("export", "check", "show"),
                        help="export: write DIR/<kind>.schema.json; check: exit 1 if the files differ; "
                        "show KIND: print one")
    parser.add_argument("kind", nargs="?", help="event kind for 'show' (door, visit, pos, queue, heartbeat)")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help=f"folder of the files (default {SCHEMA_DIR})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import orjson

    from footfall.schemas.events import KINDS

    if args.action == "show":
        if args.kind not in KINDS:
            print(f"footfall schemas show: kind must be one of {', '.join(KINDS)}", file=sys.stderr)
            return 2
        print(orjson.dumps(kind_schema(args.kind), option=orjson.OPT_INDENT_2).decode())
        return 0
    if args.action == "export":
        for path in write_schemas(args.dir):
            print(path)
        return 0
    stale = []
    for kind in KINDS:
        path = args.dir / f"{kind}.schema.json"
        want = orjson.dumps(kind_schema(kind), option=orjson.OPT_INDENT_2) + b"\n"
        if not path.exists() or path.read_bytes() != want:
            stale.append(str(path))
    if stale:
        print("out of date (run 'footfall schemas export'): " + ", ".join(stale), file=sys.stderr)
        return 1
    print(f"{len(KINDS)} schema files up to date in {args.dir}")
    return 0

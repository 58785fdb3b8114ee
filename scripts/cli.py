"""The `footfall` command: one entry point, a subcommand per tool.

Each tool module offers `register(subparsers)`, which adds its parser and sets
`func` to the function that runs it and returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

__all__ = ["main"]

#: Subcommand -> module under footfall.scripts that registers it.
TOOLS = {
    "demo": "demo",
    "worker": "worker",
    "stack": "stackcli",
    "simulate": "simulate",
    "replay": "replay",
    "bench": "bench",
    "scale": "scale",
    "schemas": "schemacli",
    "evaluate": "evaluate",
    "dashboard": "dashboard",
    "alerts": "alerts",
    "export": "export",
    "staffing": "staffingcli",
    "faults": "faultsuite",
    "peers": "peers",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="footfall",
        description="Real-time customer-flow intelligence: live aggregates, forecasts and alerts "
        "from store events on Kafka.",
    )
    parser.add_argument("--log-level", default=None, help="debug, info, warning, error (default info)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in TOOLS.values():
        try:
            mod = importlib.import_module(f"footfall.scripts.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"footfall.scripts.{module}":
                continue  # a tool not built yet
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (args.log_level or "info").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if level != "DEBUG":
        # kafka-python (used here for set-up: topics, readiness) logs every connection at INFO.
        logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`footfall faults`: run the fault suite (tests/faults) on the real stack and print what each scenario did.

Each fault test appends one JSON row per scenario to the file named by `FOOTFALL_FAULT_REPORT`
(when set; see `append_row`), before its assertions, so a failing scenario still shows its numbers.
This command runs `python -m pytest tests/faults -q` with that variable set (every scenario, those of
minutes marked `long_faults` included: Redis paused 60 s, down 5 min), and the input-fault tests of
`SCENARIO_PATHS` (a skewed clock, a 2-hour backfill, a changed bucket length), then prints one line
per scenario: messages sent, events counted (arrivals summed over the Redis bucket records),
dead letters by reason (read back from `<prefix>.dead-letter`, header `footfall.reason`), events
lost and double-counted (per bucket against a brute-force count of what was sent, summed), and
the recovery time (from the fault until every event sent before it is counted). It exits with
pytest's status.

>>> print(format_table([{"scenario": "kill9", "sent": 10, "counted": 8, "dead_letters": {"not_json": 2},
...                      "lost": 0, "double": 0, "recovery_s": 4.25, "exact": True}]))
scenario  sent  counted  dead-lettered (reason)  lost  double  recovery s  exact
--------  ----  -------  ----------------------  ----  ------  ----------  -----
kill9       10        8  2 (not_json 2)             0       0        4.2  yes
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

__all__ = ["REPORT_ENV", "append_row", "format_table", "read_rows", "register"]

#: The environment variable naming the file the fault tests append their rows to.
REPORT_ENV = "FOOTFALL_FAULT_REPORT"

#: What the command runs: the fault suite, and the integration tests of input faults that report a row too
#: (a skewed clock, a gateway's 2-hour backfill, a bucket length changed across a restart).
SCENARIO_PATHS = ("tests/faults", "tests/integration/test_late_restate.py", "tests/integration/test_refusals.py")

#: (header, row key, right-aligned) in print order.
COLUMNS = [("scenario", "scenario", False), ("sent", "sent", True), ("counted", "counted", True),
           ("dead-lettered (reason)", "dead_letters", False), ("lost", "lost", True), ("double", "double", True),
           ("recovery s", "recovery_s", True), ("exact", "exact", False)]


def append_row(row: dict[str, Any], path: str | os.PathLike[str] | None = None) -> None:
    """Append `row` as one JSON line to `path` (default: `$FOOTFALL_FAULT_REPORT`; nothing when unset).

    Keys the table reads: scenario, sent (messages, valid and malformed), counted, dead_letters
    ({reason: n}, one per source message), dead_letter_repeats (records beyond one per source
    message: a replay after a crash may send a dead letter again), lost, double, recovery_s (None
    when it never recovered), exact (bool). Other keys are kept in the file as they are.
    """
    target = path if path is not None else os.environ.get(REPORT_ENV)
    if not target:
        return
    with open(target, "ab") as out:
        out.write(orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS) + b"\n")


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows in `path`, in the order written (a missing file has none)."""
    try:
        lines = Path(path).read_bytes().splitlines()
    except FileNotFoundError:
        return []
    return [orjson.loads(line) for line in lines if line.strip()]


def _cell(key: str, value: Any, row: dict[str, Any]) -> str:
    if key == "dead_letters":
        reasons = value or {}
        total = sum(reasons.values())
        cell = f"{total} ({', '.join(f'{r} {n}' for r, n in sorted(reasons.items()))})" if total else "0"
        repeats = row.get("dead_letter_repeats") or 0
        return f"{cell} +{repeats} repeated" if repeats else cell
    if key == "recovery_s":
        return "never" if value is None else f"{value:.1f}"
    if key == "exact":
        return "yes" if value else "NO"
    return "" if value is None else str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned plain-text table."""
    cells = [[header for header, _, _ in COLUMNS]]
    cells += [[_cell(key, row.get(key), row) for _, key, _ in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if right else v.ljust(w)
                         for v, w, (_, _, right) in zip(values, widths, COLUMNS, strict=True)).rstrip()

    out = [line(cells[0]), line(["-" * w for w in widths])]
    out += [line(values) for values in cells[1:]]
    return "\n".join(out)


def _project_root() -> Path:
    here = Path(__file__).resolve().parents[1]
    return here if (here / "tests" / "faults").is_dir() else Path.cwd()


def run(args: argparse.Namespace) -> int:
    root = _project_root()
    if not (root / "tests" / "faults").is_dir():
        print(f"no tests/faults under {root}: run from the project's checkout", file=sys.stderr)
        return 2
    if args.report:
        report = Path(args.report).resolve()
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_bytes(b"")
        keep = True
    else:
        fd, name = tempfile.mkstemp(prefix="footfall-faults-", suffix=".jsonl")
        os.close(fd)
        report, keep = Path(name), False
    cmd = [sys.executable, "-m", "pytest", *SCENARIO_PATHS, "-q", "-p", "no:cacheprovider"]
    if args.k:
        cmd += ["-k", args.k]
    env = dict(os.environ, **{REPORT_ENV: str(report)})
    try:
        status = subprocess.run(cmd, cwd=root, env=env, check=False).returncode
        rows = read_rows(report)
    finally:
        if not keep:
            report.unlink(missing_ok=True)
    print()
    if rows:
        print(format_table(rows))
    else:
        print("no scenario reported a row (none selected, or none got that far)")
    if keep:
        print(f"rows: {report}")
    return status


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "faults",
        help="run the fault suite (tests/faults) on the real stack and print a table of what each scenario did",
        description="Run `python -m pytest tests/faults -q` (real Kafka and Redis, as the test session provides "
        "them) with FOOTFALL_FAULT_REPORT set, then print per scenario: messages sent, events counted, dead letters "
        "by reason, events lost and double-counted against a brute-force count, and recovery seconds. Exits with "
        "pytest's status.",
    )
    parser.add_argument("--report", metavar="PATH", help="keep the JSON rows in PATH (default: a temporary file)")
    parser.add_argument("-k", metavar="EXPR", help="only the tests matching EXPR (pytest -k)")
    parser.set_defaults(func=run)

"""`footfall staffing`: how many agents (tellers, desk staff, call-centre agents) a queue needs.

`footfall staffing erlang` takes the customers expected in one interval, the average handling
time and a service-level target ("80 % answered within 20 s") and prints the fewest agents that
meet it, under Erlang C (customers wait as long as it takes) or, with `--patience-s`, Erlang A
(customers hang up after a mean patience), then the staff to schedule after shrinkage. See
`footfall.operators.staffing.erlang` for the models and the exact definitions.

Examples
--------
::

    footfall staffing erlang --arrivals 100 --interval-s 1800 --aht-s 180 --answer-s 20 --target-sl 0.8
    footfall staffing erlang --arrivals 100 --interval-s 1800 --aht-s 180 --answer-s 20 --target-sl 0.8 \\
        --patience-s 300 --max-abandon 0.05 --max-occupancy 0.85 --shrinkage 0.3 --json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable

__all__ = ["main", "register", "run"]

EPILOG = """\
definitions:
  load           arrivals * aht_s / interval_s, in Erlangs (agents kept busy on average)
  agents         fewest agents on the queue meeting --target-sl (and --max-abandon, --max-occupancy)
  scheduled      ceil(agents / (1 - shrinkage)): staff to schedule so that `agents` are available
  service_level  customers answered within --answer-s, over every customer offered (abandoned included)
  p_wait         probability that a customer has to wait at all
  asa_s          mean wait in queue in seconds over every customer offered (until answered or hanging up)
  occupancy      share of the agents' time spent serving customers
  abandon        share of customers hanging up before being answered (Erlang A only, else null)

examples:
  footfall staffing erlang --arrivals 100 --interval-s 1800 --aht-s 180 --answer-s 20 --target-sl 0.8 \\
      --shrinkage 0.3
  footfall staffing erlang --arrivals 100 --interval-s 1800 --aht-s 180 --answer-s 20 --target-sl 0.8 \\
      --patience-s 300 --max-abandon 0.05 --json
"""


def _number(check: Callable[[float], bool], rule: str) -> Callable[[str], float]:
    """An argparse type: a finite number obeying `check`, or an error saying `rule`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number {rule}, got {text!r}") from None
        if not math.isfinite(value) or not check(value):
            raise argparse.ArgumentTypeError(f"must be a number {rule}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


NON_NEGATIVE = _number(lambda v: v >= 0, ">= 0")
POSITIVE = _number(lambda v: v > 0, "> 0")
OPEN_UNIT = _number(lambda v: 0 < v < 1, "strictly between 0 and 1 (0.8 for 80 %)")
UNIT_UPPER = _number(lambda v: 0 < v <= 1, "in (0, 1] (0.05 for 5 %)")
UNIT_LOWER = _number(lambda v: 0 <= v < 1, "in [0, 1) (0.3 for 30 %)")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "staffing",
        help="agents a queue needs for a service-level target (Erlang C / Erlang A)",
        description="Staffing advice from queueing theory for bank tellers, telecom desks and call centres.",
    )
    actions = parser.add_subparsers(dest="staffing_action", metavar="ACTION")
    actions.required = True
    erlang = actions.add_parser(
        "erlang",
        help="fewest agents meeting a service level, under Erlang C or (with --patience-s) Erlang A",
        description="The fewest agents that answer --target-sl of the customers within --answer-s seconds,\n"
        "when --arrivals customers come in --interval-s seconds and each takes --aht-s seconds\n"
        "on average. Erlang C (M/M/n: nobody hangs up) by default; Erlang A (M/M/n+M: customers\n"
        "hang up after an exponential patience with mean --patience-s) when --patience-s is\n"
        "given. Exact formulas, no simulation. Errors exit with status 2.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    erlang.add_argument("--arrivals", type=NON_NEGATIVE, required=True, metavar="N",
                        help="customers arriving in the interval (a forecast), >= 0")
    erlang.add_argument("--interval-s", type=POSITIVE, required=True, metavar="S",
                        help="length of the interval in seconds (1800 for half an hour), > 0")
    erlang.add_argument("--aht-s", type=POSITIVE, required=True, metavar="S",
                        help="average handling time per customer in seconds, > 0")
    erlang.add_argument("--answer-s", type=NON_NEGATIVE, required=True, metavar="T",
                        help="target answer time in seconds: the 20 of '80 %% within 20 s', >= 0")
    erlang.add_argument("--target-sl", type=OPEN_UNIT, required=True, metavar="P",
                        help="target service level, a fraction in (0, 1): the 0.8 of '80 %% within 20 s'")
    erlang.add_argument("--patience-s", type=POSITIVE, metavar="S",
                        help="mean patience of waiting customers in seconds; switches to Erlang A")
    erlang.add_argument("--max-abandon", type=UNIT_UPPER, metavar="P",
                        help="highest acceptable share of customers hanging up, in (0, 1]; needs --patience-s")
    erlang.add_argument("--max-occupancy", type=UNIT_UPPER, metavar="P",
                        help="highest acceptable agent occupancy, in (0, 1] (e.g. 0.85)")
    erlang.add_argument("--shrinkage", type=UNIT_LOWER, default=0.0, metavar="P",
                        help="share of scheduled time agents are off the queue (breaks, training), in [0, 1); "
                        "default 0")
    erlang.add_argument("--json", action="store_true", help="print one JSON object instead of lines for people")
    erlang.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from footfall.operators.staffing import erlang

    if args.max_abandon is not None and args.patience_s is None:
        print("footfall staffing erlang: --max-abandon needs --patience-s (only Erlang A models customers "
              "hanging up)", file=sys.stderr)
        return 2
    try:
        target = erlang.StaffingTarget(
            interval_s=args.interval_s, aht_s=args.aht_s, answer_s=args.answer_s, target_sl=args.target_sl,
            patience_s=args.patience_s, max_abandon=args.max_abandon, max_occupancy=args.max_occupancy,
            shrinkage=args.shrinkage,
        )
        staffing = target.required(args.arrivals)
    except ValueError as exc:
        print(f"footfall staffing erlang: {exc}", file=sys.stderr)
        return 2
    result = dataclasses.asdict(staffing)
    if args.json:
        print(json.dumps(result))
        return 0
    load = erlang.offered_load(args.arrivals, args.interval_s, args.aht_s)
    model = ("Erlang C (no abandonment)" if args.patience_s is None
             else f"Erlang A (mean patience {args.patience_s:g} s)")
    print(f"model          {model}")
    print(f"load           {load:.4g} Erlangs")
    print(f"agents         {staffing.agents}")
    print(f"scheduled      {staffing.scheduled} (shrinkage {args.shrinkage:.0%})")
    print(f"service_level  {staffing.service_level:.4f} (answered within {args.answer_s:g} s, target "
          f"{args.target_sl:g})")
    print(f"p_wait         {staffing.p_wait:.4f}")
    print(f"asa_s          {staffing.asa_s:.1f}")
    print(f"occupancy      {staffing.occupancy:.3f}")
    print(f"abandon        {'-' if staffing.abandon is None else f'{staffing.abandon:.4f}'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run `footfall staffing ...` alone; `argv` is what follows `staffing` (for example `["erlang", ...]`)."""
    parser = argparse.ArgumentParser(prog="footfall")
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
    args = parser.parse_args(["staffing", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Print the state of every alert and scrape target of a Prometheus (for the demo's proof and for ops).

    python tests/monitoring/alert_states.py --prometheus http://127.0.0.1:9090 [--json]

Exit status 0 when Prometheus answered (whatever the states), 2 when it did not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prom_api import PromError, alert_states, targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus base URL")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        states = alert_states(args.prometheus)
        tgts = targets(args.prometheus)
    except PromError as exc:
        print(f"Prometheus at {args.prometheus} does not answer: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps(
                {
                    "prometheus": args.prometheus,
                    "alerts": [{"alert": n, "state": s, "active": a} for n, s, a in states],
                    "targets": [
                        {"job": t["labels"].get("job"), "instance": t["labels"].get("instance"), "health": t["health"]}
                        for t in tgts
                    ],
                },
                indent=2,
            )
        )
        return 0
    print(f"Prometheus: {args.prometheus}")
    for t in tgts:
        err = f"  ({t['lastError']})" if t.get("lastError") else ""
        print(f"  target {t['labels'].get('job', '?'):<14} {t['labels'].get('instance', '?'):<32} {t['health']}{err}")
    for name, state, active in states:
        print(f"  alert  {name:<32} {state}{f' ({active})' if active else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

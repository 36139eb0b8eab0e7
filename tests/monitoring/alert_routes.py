#!/usr/bin/env python3
"""Print where alerts go: the Alertmanagers a Prometheus sends to, and one Alertmanager's routes and receivers.

    python tests/monitoring/alert_routes.py --prometheus http://127.0.0.1:9090 \\
        --alertmanager http://127.0.0.1:9093 [--sink http://127.0.0.1:9095] [--json]

For the demo's proof and for ops (through an SSH tunnel to the monitoring host). Read from the live APIs:
Prometheus ``/api/v1/alertmanagers``, Alertmanager ``/api/v2/status`` (its loaded config, in which Alertmanager
itself shows every secret as ``<secret>``) and ``/api/v2/alerts``; with ``--sink``, the sandbox's alert sink
(``/notifications``). Per receiver only the kind of each integration and its non-secret target are printed
(e-mail ``to``, chat ``channel``, a webhook's host only).
Exit status 0 when everything asked answered, 2 when something did not.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prom_api import PromError, api

TIMEOUT = 10.0


def get_json(url: str) -> Any:
    """GET ``url`` and decode its JSON; :class:`PromError` on any transport or decoding error."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PromError(f"{url}: {exc}") from exc


def _host(url: str | None) -> str | None:
    """Only the host[:port] of a webhook URL (its path or query may carry a token)."""
    netloc = urllib.parse.urlsplit(url or "").netloc
    return f"to {netloc.rpartition('@')[2]}" if netloc else None


def _targets(receiver: dict[str, Any]) -> list[str]:
    """``kind target`` for each integration of a receiver (secrets are never printed)."""
    out = []
    for key, configs in sorted(receiver.items()):
        if not key.endswith("_configs"):
            continue
        kind = key.removesuffix("_configs")
        for config in configs or []:
            target = {
                "email": config.get("to"),
                "webhook": _host(config.get("url")),
                "slack": config.get("channel"),
                "msteams": None,
                "pagerduty": None,
                "opsgenie": None,
                "telegram": config.get("chat_id"),
            }.get(kind)
            out.append(f"{kind} {target}" if target else kind)
    return out


def describe(prometheus: str | None, alertmanager: str, sink: str | None) -> dict[str, Any]:
    """What the APIs say, as a dict (``--json`` prints it)."""
    result: dict[str, Any] = {"alertmanager": alertmanager}
    if prometheus:
        data = api(prometheus, "alertmanagers")
        result["prometheus"] = prometheus
        result["prometheus_sends_to"] = [a["url"] for a in data["activeAlertmanagers"]]
        result["prometheus_dropped"] = [a["url"] for a in data.get("droppedAlertmanagers", [])]
    status = get_json(f"{alertmanager.rstrip('/')}/api/v2/status")
    config = yaml.safe_load(status["config"]["original"])
    route = config["route"]
    receivers = {r["name"]: _targets(r) for r in config.get("receivers", [])}
    result["version"] = status.get("versionInfo", {}).get("version")
    result["routes"] = [
        {"matchers": r.get("matchers", []), "receiver": r.get("receiver", route["receiver"])}
        for r in route.get("routes", [])
    ] + [{"matchers": ["(anything else)"], "receiver": route["receiver"]}]
    result["receivers"] = receivers
    result["timing"] = {k: route.get(k) for k in ("group_by", "group_wait", "group_interval", "repeat_interval")}
    result["inhibit_rules"] = [
        {"source": r.get("source_matchers", []), "target": r.get("target_matchers", []), "equal": r.get("equal", [])}
        for r in config.get("inhibit_rules", [])
    ]
    alerts = get_json(f"{alertmanager.rstrip('/')}/api/v2/alerts")
    result["alerts"] = [
        {
            "alertname": a["labels"].get("alertname"),
            "state": a["status"]["state"],
            "receivers": [r["name"] for r in a.get("receivers", [])],
        }
        for a in alerts
    ]
    if sink:
        notifications = get_json(f"{sink.rstrip('/')}/notifications")["notifications"]
        result["sink"] = sink
        result["sink_notifications"] = [
            {
                "path": n["path"],
                "status": n["payload"].get("status"),
                "received_at": n["received_at"],
                "alerts": sorted({a["labels"].get("alertname") for a in n["payload"].get("alerts", [])}),
            }
            for n in notifications
        ]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", help="Prometheus base URL (which Alertmanagers it sends to)")
    parser.add_argument("--alertmanager", default="http://127.0.0.1:9093", help="Alertmanager base URL")
    parser.add_argument("--sink", help="the sandbox's alert sink base URL (what was delivered)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    try:
        info = describe(args.prometheus, args.alertmanager, args.sink)
    except PromError as exc:
        print(f"no answer: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print("Where alerts go")
    if args.prometheus:
        print(
            f"  Prometheus {info['prometheus']} sends alerts to: {', '.join(info['prometheus_sends_to']) or 'NOBODY'}"
        )
    print(f"  Alertmanager {info['alertmanager']} ({info['version']}) routes them:")
    for route in info["routes"]:
        targets = "; ".join(info["receivers"].get(route["receiver"], [])) or "no integration: dropped"
        print(f"    {', '.join(route['matchers']):<24} -> {route['receiver']} ({targets})")
    timing = info["timing"]
    print(
        f"    grouped by {', '.join(timing['group_by'] or [])}; group_wait {timing['group_wait']}, "
        f"group_interval {timing['group_interval']}, repeat_interval {timing['repeat_interval']}"
    )
    for rule in info["inhibit_rules"]:
        print(f"    while {', '.join(rule['source'])} fires, not sent: {', '.join(rule['target'])}")
    states = {}
    for alert in info["alerts"]:
        states[alert["state"]] = states.get(alert["state"], 0) + 1
    print(f"  alerts in Alertmanager now: {', '.join(f'{n} {s}' for s, n in sorted(states.items())) or 'none'}")
    if args.sink:
        print(f"  delivered to the sandbox's alert sink ({args.sink}/notifications): {len(info['sink_notifications'])}")
        for n in info["sink_notifications"][-10:]:
            print(f"    {n['received_at']} {n['path']:<10} {n['status']:<9} {', '.join(n['alerts'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

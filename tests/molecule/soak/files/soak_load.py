"""Load driver of the soak scenario (test harness only, stdlib): runs on an app host while a rollout soaks.

Logs the given auth-server users in once, then sends GET <path> with each user's token in turn through the
app's nginx at --rate requests per second until stopped (SIGTERM); every --report seconds it writes the
answers it got so far ({"requests": n, "statuses": {"200": n, "403": n, ...}}) to --out. Tokens are never
written anywhere.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import signal
import sys
import time
import urllib.request


def login(auth_url: str, email: str, password: str) -> str:
    body = json.dumps({"email": email, "password": password}).encode()
    request = urllib.request.Request(
        auth_url.rstrip("/") + "/api/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        data = json.load(answer)
    return (data.get("data") or data)["accessToken"]


def call(host: str, path: str, token: str) -> str:
    conn = http.client.HTTPConnection(host, 80, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": "Bearer " + token, "Connection": "close"})
        answer = conn.getresponse()
        answer.read()
        return str(answer.status)
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--auth-url", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--path", default="/api/auth/verify")
    parser.add_argument("--rate", type=float, default=8.0)
    parser.add_argument("--report", type=float, default=1.0)
    parser.add_argument("--out", required=True)
    parser.add_argument("emails", nargs="+")
    args = parser.parse_args()
    tokens = [login(args.auth_url, email, args.password) for email in args.emails]
    statuses: collections.Counter[str] = collections.Counter()
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    interval, reported, sent = 1.0 / args.rate, 0.0, 0
    while running:
        started = time.monotonic()
        statuses[call(args.host, args.path, tokens[sent % len(tokens)])] += 1
        sent += 1
        if started - reported >= args.report:
            reported = started
            with open(args.out + ".tmp", "w", encoding="utf-8") as out:
                json.dump({"requests": sent, "statuses": statuses}, out)
            os.replace(args.out + ".tmp", args.out)
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump({"requests": sent, "statuses": statuses}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

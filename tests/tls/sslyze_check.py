"""Check a TLS endpoint against Mozilla's "intermediate" profile with sslyze, reading its JSON.

sslyze runs from its own venv (it pins its own cryptography/nassl; see requirements-sslyze.txt) and exits
0 when it could not connect at all, so the verdict here comes from its JSON report
(``server_scan_results[].scan_status`` / ``connectivity_status``) plus its exit code for the Mozilla check
(1 = not compliant). Usage::

    python tests/tls/sslyze_check.py auth.rozitech.test:443 --ip 172.18.0.3 --ca-file sandbox-ca.pem

Exit status 0 = compliant, 1 = a problem (printed, one per line). Profile: https://ssl-config.mozilla.org/
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_SSLYZE = Path(__file__).resolve().parents[2] / ".cache" / "sslyze-venv" / "bin" / "sslyze"
REFUSED = ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites", "tls_1_1_cipher_suites")
ACCEPTED = ("tls_1_2_cipher_suites", "tls_1_3_cipher_suites")


def _accepted(scan_result: dict, key: str) -> list[str]:
    """Names of the cipher suites sslyze saw accepted for one protocol (empty when not scanned)."""
    attempt = scan_result.get(key) or {}
    result = attempt.get("result") or {}
    return [c["cipher_suite"]["name"] for c in result.get("accepted_cipher_suites", [])]


def evaluate(report: dict, returncode: int, output: str = "") -> list[str]:
    """Problems found in one sslyze JSON report (``--json_out``) and its exit code; [] = compliant.

    A report without results, or with a server sslyze could not connect to, is a problem (sslyze itself
    exits 0 then). Exit code 1 means "not compliant with the Mozilla profile"; its reasons are in ``output``.
    """
    problems: list[str] = []
    for bad in report.get("invalid_server_strings") or []:
        problems.append(f"sslyze rejected the target {bad}")
    results = report.get("server_scan_results") or []
    if not results:
        problems.append("sslyze reported no server scan result")
    for server in results:
        loc = server.get("server_location", {})
        name = f"{loc.get('hostname')}:{loc.get('port')}"
        if server.get("connectivity_status") != "COMPLETED" or server.get("scan_status") != "COMPLETED":
            trace = (server.get("connectivity_error_trace") or "").strip().splitlines()
            problems.append(f"could not connect to {name}: {trace[-1] if trace else server.get('scan_status')}")
            continue
        scan = server.get("scan_result") or {}
        for key in REFUSED:
            if _accepted(scan, key):
                problems.append(f"{name} accepts {key.removesuffix('_cipher_suites')}: {_accepted(scan, key)}")
        for key in ACCEPTED:
            if not _accepted(scan, key):
                problems.append(f"{name} does not accept {key.removesuffix('_cipher_suites')}")
    if returncode != 0:
        reasons = [line.strip() for line in output.splitlines() if line.strip().startswith("* ")]
        problems.append(f"not compliant with Mozilla intermediate (sslyze exit {returncode}): {'; '.join(reasons)}")
    return problems


def scan(target: str, ip: str | None, ca_file: str | None, sslyze: str) -> tuple[dict, int, str]:
    """Run sslyze once; returns (JSON report, exit code, console output)."""
    server = f"{target}{{{ip}}}" if ip else target
    with tempfile.TemporaryDirectory() as tmp:
        out_json = os.path.join(tmp, "sslyze.json")
        cmd = [sslyze, f"--json_out={out_json}", "--mozilla_config=intermediate"]
        if ca_file:
            cmd.append(f"--certinfo_ca_file={ca_file}")
        proc = subprocess.run([*cmd, server], capture_output=True, text=True, timeout=120, check=False)
        try:
            with open(out_json, encoding="utf-8") as handle:
                report = json.load(handle)
        except (OSError, ValueError):
            report = {}
    return report, proc.returncode, proc.stdout + proc.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("target", help="host:port; the host is the SNI and the name the certificate must match")
    parser.add_argument("--ip", help="connect to this address instead of resolving the host")
    parser.add_argument("--ca-file", help="PEM root(s) the chain must validate against (private/test CAs)")
    parser.add_argument("--sslyze", default=os.environ.get("SSLYZE", str(DEFAULT_SSLYZE)))
    args = parser.parse_args(argv)
    report, code, output = scan(args.target, args.ip, args.ca_file, args.sslyze)
    problems = evaluate(report, code, output)
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{args.target}: compliant with Mozilla intermediate")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

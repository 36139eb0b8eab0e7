"""The sslyze verdict: "could not connect" and non-compliance fail; a live endpoint when one is given.

Live check (skipped unless AUTH_PROXY_TLS_TARGET is set; Molecule's verify sets it):
    AUTH_PROXY_TLS_TARGET=auth.rozitech.test:443 AUTH_PROXY_TLS_IP=172.18.0.3 AUTH_PROXY_TLS_CA=ca.pem \
        .venv/bin/python -m pytest tests/tls
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sslyze_check import DEFAULT_SSLYZE, evaluate, scan

SSLYZE = os.environ.get("SSLYZE", str(DEFAULT_SSLYZE))


def _suites(*names: str) -> dict:
    return {"result": {"accepted_cipher_suites": [{"cipher_suite": {"name": n}} for n in names]}}


def _server(**scan_result: dict) -> dict:
    return {
        "server_location": {"hostname": "auth.example.test", "port": 443},
        "connectivity_status": "COMPLETED",
        "scan_status": "COMPLETED",
        "scan_result": scan_result,
    }


GOOD = _server(
    tls_1_2_cipher_suites=_suites("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    tls_1_3_cipher_suites=_suites("TLS_AES_128_GCM_SHA256"),
    tls_1_1_cipher_suites=_suites(),
)


def test_compliant_report_has_no_problem():
    assert evaluate({"server_scan_results": [GOOD]}, 0) == []


def test_no_connectivity_fails_although_sslyze_exits_0():
    server = {
        "server_location": {"hostname": "auth.example.test", "port": 443},
        "connectivity_status": "ERROR",
        "scan_status": "ERROR_NO_CONNECTIVITY",
        "connectivity_error_trace": "Traceback ...\nConnectionToServerFailed: Connection to the server failed",
        "scan_result": None,
    }
    problems = evaluate({"server_scan_results": [server]}, 0)
    assert problems and problems[0].startswith("could not connect to auth.example.test:443")


def test_empty_or_missing_report_fails():
    assert evaluate({}, 0) == ["sslyze reported no server scan result"]


def test_old_protocol_or_non_compliance_fails():
    old = _server(
        tls_1_1_cipher_suites=_suites("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
        tls_1_2_cipher_suites=_suites("x"),
        tls_1_3_cipher_suites=_suites("y"),
    )
    problems = evaluate({"server_scan_results": [old]}, 1, "  * tls_versions: TLSv1.1 should be rejected.\n")
    assert any("accepts tls_1_1" in p for p in problems)
    assert any("not compliant" in p and "tls_versions" in p for p in problems)


@pytest.mark.skipif(not Path(SSLYZE).exists(), reason="no sslyze venv (make sslyze-venv)")
def test_nothing_listening_is_a_failure():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report, code, output = scan(f"localhost:{port}", "127.0.0.1", None, SSLYZE)
    assert code == 0, "sslyze exits 0 when it cannot connect: the JSON is what tells"
    assert any(p.startswith("could not connect") for p in evaluate(report, code, output))


@pytest.mark.skipif(not os.environ.get("AUTH_PROXY_TLS_TARGET"), reason="AUTH_PROXY_TLS_TARGET not set")
def test_endpoint_is_mozilla_intermediate():
    report, code, output = scan(
        os.environ["AUTH_PROXY_TLS_TARGET"],
        os.environ.get("AUTH_PROXY_TLS_IP") or None,
        os.environ.get("AUTH_PROXY_TLS_CA") or None,
        SSLYZE,
    )
    problems = evaluate(report, code, output)
    assert not problems, "\n".join(problems)

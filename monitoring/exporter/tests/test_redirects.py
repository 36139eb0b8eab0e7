"""Issue 16 item 2: redirects are followed like blackbox's http_2xx (configurable off), the final status and
the hop count are reported, and loops and https->http downgrades fail with their own reasons.
"""

from __future__ import annotations

import socket

import pytest
from rozitech_auth_exporter.config import ConfigError, load

from .conftest import make_exporter, read_request_head

P = "rozitech_auth_probe_"


def router(routes: dict[str, tuple[int, dict[str, str], bytes]], seen: list[tuple[str, str, str]] | None = None):
    """A handler answering ``routes[path] = (status, headers, body)``; records (method, path, auth header)."""

    def handler(conn: socket.socket) -> None:
        data = read_request_head(conn)
        if data is None:
            return
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, path, _ = head[0].split(" ", 2)
        fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
        if seen is not None:
            seen.append((method, path, fields.get("Authorization", "")))
        status, headers, body = routes.get(path, (404, {}, b"{}"))
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    return handler


OK = (200, {"Content-Type": "application/json"}, b'{"status":"ok"}')


def test_a_301_is_followed_and_the_final_status_counts(tiny_server) -> None:
    # blackbox_exporter#511: a 301 used to read as "auth server down"
    server = tiny_server(router({"/health": (301, {"Location": "/v2/health"}, b""), "/v2/health": OK}))
    exporter = make_exporter(server.url, credentials=None)
    assert exporter.cycle() == 2, "each hop is one request of the cycle's budget"
    assert exporter.value(f"{P}success", probe="health") == 1
    assert exporter.value(f"{P}health_http_status_code") == 200
    assert exporter.value(f"{P}health_body_status_ok") == 1
    assert exporter.value(f"{P}http_redirects", endpoint="health") == 1
    assert exporter.value(f"{P}responses_total", endpoint="health", code="301") == 1
    assert exporter.value(f"{P}responses_total", endpoint="health", code="200") == 1


def test_redirects_off_reports_the_3xx_as_a_failure(tiny_server) -> None:
    server = tiny_server(router({"/health": (301, {"Location": "/v2/health"}, b""), "/v2/health": OK}))
    exporter = make_exporter(server.url, credentials=None, follow_redirects=False)
    assert exporter.cycle() == 1
    assert exporter.value(f"{P}success", probe="health") == 0
    assert exporter.value(f"{P}health_http_status_code") == 301
    assert exporter.value(f"{P}http_redirects", endpoint="health") == 0


def test_a_redirect_loop_stops_at_max_redirects(tiny_server) -> None:
    server = tiny_server(router({"/health": (302, {"Location": "/health"}, b"")}))
    exporter = make_exporter(server.url, credentials=None, max_redirects=3)
    assert exporter.cycle() == 4, "the first request and 3 followed hops"
    assert exporter.value(f"{P}success", probe="health") == 0
    assert exporter.value(f"{P}health_http_status_code") == 302
    assert exporter.value(f"{P}http_redirects", endpoint="health") == 3
    assert exporter.value(f"{P}request_errors_total", endpoint="health", reason="too_many_redirects") == 1


def test_redirect_hops_never_exceed_the_cycle_cap(tiny_server) -> None:
    server = tiny_server(router({"/health": (302, {"Location": "/health"}, b"")}))
    exporter = make_exporter(server.url, credentials=None, max_redirects=20, max_requests_per_cycle=5)
    assert exporter.cycle() == 5
    assert exporter.value(f"{P}success", probe="health") == 0
    assert exporter.value(f"{P}cycles_total") == 1


def test_login_post_through_a_308_keeps_post_and_a_cross_host_hop_drops_the_token(tiny_server) -> None:
    seen: list[tuple[str, str, str]] = []
    other = tiny_server(router({"/me": (200, {}, b'{"user":{"email":"x@y"}}')}, seen))
    server = tiny_server(
        router(
            {
                "/health": OK,
                "/api/auth/login": (308, {"Location": "/v2/login"}, b""),
                "/v2/login": (200, {}, b'{"accessToken":"tok-123"}'),
                "/api/auth/me": (307, {"Location": f"http://localhost:{other.port}/me"}, b""),
            },
            seen,
        )
    )
    exporter = make_exporter(server.url)
    exporter.cycle()
    assert ("POST", "/v2/login", "") in seen, "308 keeps the method"
    assert ("GET", "/api/auth/me", "Bearer tok-123") in seen
    assert ("GET", "/me", "") in seen, "no Authorization header for another host"
    assert exporter.value(f"{P}http_redirects", endpoint="login") == 1
    assert exporter.value(f"{P}http_redirects", endpoint="me") == 1
    assert exporter.value(f"{P}success", probe="verify") == 1


def test_a_301_turns_the_login_post_into_a_get(tiny_server) -> None:
    seen: list[tuple[str, str, str]] = []
    server = tiny_server(router({"/health": OK, "/api/auth/login": (301, {"Location": "/v2/login"}, b"")}, seen))
    exporter = make_exporter(server.url)
    exporter.cycle()
    assert ("GET", "/v2/login", "") in seen, "like browsers, Go's client and requests"
    assert exporter.value(f"{P}success", probe="verify") == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--follow-redirects", "maybe"], "follow_redirects"), (["--max-redirects", "21"], "max_redirects")],
)
def test_redirect_options_are_validated(args: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load(["--target-url", "http://auth.test", *args], environ={})


def test_redirect_options_from_flag_env_and_yaml(tmp_path) -> None:
    cfg, _ = load(["--target-url", "http://a.test"], environ={})
    assert (cfg.follow_redirects, cfg.max_redirects) == (True, 10)
    cfg, _ = load(["--target-url", "http://a.test"], environ={"AUTH_EXPORTER_FOLLOW_REDIRECTS": "false"})
    assert cfg.follow_redirects is False
    config = tmp_path / "c.yml"
    config.write_text("follow_redirects: false\nmax_redirects: 2\n")
    cfg, _ = load(["--config", str(config), "--target-url", "http://a.test"], environ={})
    assert (cfg.follow_redirects, cfg.max_redirects) == (False, 2)

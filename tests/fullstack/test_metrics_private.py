"""The patch's metrics are private: the app's public nginx does not serve them, Prometheus scrapes them.

Each app host's metrics listener (remote_auth_metrics_listen) is bound to the container's address on the
sandbox network; Prometheus (a container on that network) scrapes ``<host>:9748``, the published app
ports (nginx, 8080/8081) answer ``/metrics/`` with the app's own 404.
"""

from __future__ import annotations

import requests

from .conftest import APPS, Sandbox, wait_for


def test_public_site_refuses_metrics_while_prometheus_scrapes_every_host(sandbox: Sandbox) -> None:
    for app in APPS:
        public = requests.get(f"{app}/metrics/", timeout=10)
        assert public.status_code == 404, (app, public.status_code)
        assert "rozitech_remote_auth_" not in public.text
        private = requests.get(sandbox.metrics_url(app), timeout=10)
        assert private.status_code == 200
        assert "rozitech_remote_auth_verify_requests_total" in private.text

    def scraped() -> list[dict] | None:
        targets = sandbox.query('up{job="saas_admin"}')
        up = {t["metric"]["instance"]: t["value"][1] for t in targets}
        return targets if len(up) == len(APPS) and set(up.values()) == {"1"} else None

    targets = wait_for("Prometheus scraping every app host's listener", scraped, timeout=60)
    assert all(t["metric"]["instance"].endswith(":9748") for t in targets), targets

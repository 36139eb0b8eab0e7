"""``manage.py remote_auth_links``: the pre-rollout report, manual link/unlink, conflicts."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from rozitech_remote_auth.models import IdentityLink, LinkRefusal

pytestmark = pytest.mark.django_db

User = get_user_model()


def report(*args: str) -> dict:
    out = io.StringIO()
    call_command("remote_auth_links", "report", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def names(data: dict, group: str) -> list[str]:
    return [row["username"] for row in data["unlinked"][group]["rows"]]


@pytest.fixture
def users():
    make = User.objects.create
    return {
        "plain": make(username="plain", email="plain@example.com"),
        "admin": make(username="admin", email="admin@example.com", is_superuser=True),
        "dup1": make(username="dup1", email="dup@example.com"),
        "dup2": make(username="dup2", email="DUP@example.com"),
        "none": make(username="none", email=""),
        "linked": make(username="linked", email="linked@example.com"),
    }


def test_pre_rollout_report_groups_unlinked_users_by_what_their_first_login_does(users, settings):
    IdentityLink.objects.create(remote_id="r-linked", user=users["linked"], method="email")
    LinkRefusal.objects.create(
        remote_id="r-evil",
        reason="email_unverified",
        email="admin@example.com",
        user=users["admin"],
    )
    data = report()
    assert (data["users"], data["linked"]) == (6, 1)
    assert names(data, "will_link") == ["plain"]
    assert names(data, "privileged") == ["admin"]
    assert names(data, "duplicate_email") == ["dup1", "dup2"]
    assert names(data, "no_email") == ["none"]
    assert data["conflicts"]["count"] == 1
    row = data["conflicts"]["rows"][0]
    assert (row["reason"], row["remote_id"], row["username"]) == (
        "email_unverified",
        "r-evil",
        "admin",
    )

    settings.AUTH_SERVICE_LINK_BY_EMAIL = False
    assert names(report(), "manual_only") == ["plain", "admin"]

    with pytest.raises(CommandError, match="3 conflict"):
        call_command("remote_auth_links", "report", "--fail-on-conflicts", stdout=io.StringIO())


def test_text_report_names_groups_and_conflicts(users):
    out = io.StringIO()
    call_command("remote_auth_links", "report", stdout=out)
    text = out.getvalue()
    assert "Local users: 6, linked: 0, not linked: 6" in text
    assert "privileged (1)" in text
    assert f"pk={users['admin'].pk}  admin  <admin@example.com>" in text
    assert "Conflicts (refused links): 0" in text


def test_link_unlink_and_their_errors(users):
    call_command("remote_auth_links", "link", "r-1", "admin", verbosity=0)
    assert IdentityLink.objects.get(remote_id="r-1").user_id == users["admin"].pk
    with pytest.raises(CommandError, match="linked already"):
        call_command("remote_auth_links", "link", "r-2", "admin", verbosity=0)
    call_command("remote_auth_links", "link", "r-2", "admin", "--replace", verbosity=0)
    assert list(IdentityLink.objects.values_list("remote_id", flat=True)) == ["r-2"]
    with pytest.raises(CommandError, match="no such local user"):
        call_command("remote_auth_links", "link", "r-3", "nobody-here", verbosity=0)
    call_command("remote_auth_links", "unlink", "r-2", verbosity=0)
    assert not IdentityLink.objects.exists()
    with pytest.raises(CommandError, match="no such link"):
        call_command("remote_auth_links", "unlink", "r-2", verbosity=0)
    LinkRefusal.objects.create(remote_id="r-9", reason="ambiguous_email")
    call_command("remote_auth_links", "forget-refusals", verbosity=0)
    assert not LinkRefusal.objects.exists()


def test_report_before_the_migration_lists_every_user_as_unlinked(users, monkeypatch):
    from django.db import connection

    real = connection.introspection.table_names
    monkeypatch.setattr(
        connection.introspection,
        "table_names",
        lambda *a, **k: [t for t in real(*a, **k) if not t.startswith("rozitech_remote_auth_")],
    )
    data = report()
    assert (data["migrated"], data["users"], data["linked"]) == (False, 6, 0)
    assert names(data, "will_link") == ["plain", "linked"]
    out = io.StringIO()
    call_command("remote_auth_links", "report", stdout=out)
    assert "do not exist yet" in out.getvalue()


def test_the_migration_matches_the_models():
    call_command("makemigrations", "rozitech_remote_auth", "--check", "--dry-run", verbosity=0)

"""End-to-end through DRF views against the local auth-server stand-in."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken

from tests.support import bearer, failures, make_token, sample

pytestmark = pytest.mark.django_db

User = get_user_model()


def test_valid_token_creates_and_returns_local_user(client, upstream):
    token = make_token("u-1", "alice@example.com")
    response = client.get("/api/default/", **bearer(token))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["username"] == "alice@example.com"
    assert body["email"] == "alice@example.com"
    assert body["auth"] == "RemoteAuth"
    assert body["remote_id"] == "u-1"
    assert body["organization_id"] == "org-1"
    assert User.objects.count() == 1
    assert not User.objects.get().has_usable_password()


@pytest.mark.parametrize("form", ["wrapped", "bare"])
def test_both_response_forms_are_accepted(client, upstream, form):
    upstream.form = form
    upstream.profiles["u-2"] = {"firstName": "Bob", "lastName": "Builder"}
    response = client.get("/api/default/", **bearer(make_token("u-2", "bob@example.com")))
    assert response.status_code == 200
    assert (response.json()["first_name"], response.json()["last_name"]) == ("Bob", "Builder")


def test_tokens_sharing_first_40_chars_resolve_to_different_users(client, upstream):
    """The earlier attempt keyed its cache on token[:40]: identical for all HS256 tokens."""
    first = make_token("u-a", "first@example.com")
    second = make_token("u-b", "second@example.com")
    assert first[:40] == second[:40]
    assert first != second

    one = client.get("/api/default/", **bearer(first))
    two = client.get("/api/default/", **bearer(second))
    assert one.json()["email"] == "first@example.com"
    assert two.json()["email"] == "second@example.com"
    assert one.json()["pk"] != two.json()["pk"]
    assert upstream.calls == 2
    # and both stay apart when answered from the cache
    assert client.get("/api/default/", **bearer(second)).json()["email"] == "second@example.com"
    assert client.get("/api/default/", **bearer(first)).json()["email"] == "first@example.com"
    assert upstream.calls == 2


def test_second_request_is_served_from_cache(client, upstream):
    token = make_token("u-3", "carol@example.com")
    hits = sample("rozitech_remote_auth_cache_hits_total")
    assert client.get("/api/default/", **bearer(token)).status_code == 200
    assert client.get("/api/default/", **bearer(token)).status_code == 200
    assert upstream.calls == 1
    assert sample("rozitech_remote_auth_cache_hits_total") == hits + 1


def test_upstream_401_is_401_with_www_authenticate(client, upstream):
    token = make_token("u-4", "dave@example.com", secret="wrong-secret-for-this-server-123456")
    before = failures("invalid")
    response = client.get("/api/default/", **bearer(token))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer ")
    assert 'realm="api"' in response["WWW-Authenticate"]
    assert response.json()["code"] == "token_not_valid"
    assert failures("invalid") == before + 1


def test_upstream_403_is_403(client, upstream):
    upstream.respond(403, {"success": False, "message": "Email not verified"})
    before = failures("forbidden")
    response = client.get("/api/default/", **bearer(make_token("u-5", "eve@example.com")))
    assert response.status_code == 403
    assert failures("forbidden") == before + 1
    assert User.objects.count() == 0


def test_expired_local_user_inactive_is_401(client, upstream):
    User.objects.create(username="frank@example.com", email="frank@example.com", is_active=False)
    response = client.get("/api/default/", **bearer(make_token("u-6", "frank@example.com")))
    assert response.status_code == 401
    assert "inactive" in response.json()["detail"]


def test_local_email_matched_case_insensitively_and_names_updated(client, upstream):
    local = User.objects.create(
        username="john", email="John@Example.com", first_name="J", last_name="Old"
    )
    upstream.profiles["u-7"] = {"firstName": "John", "lastName": "Smith"}
    response = client.get("/api/default/", **bearer(make_token("u-7", "john@example.com")))
    assert response.status_code == 200
    assert response.json()["pk"] == local.pk
    assert User.objects.count() == 1
    local.refresh_from_db()
    assert (local.first_name, local.last_name) == ("John", "Smith")
    assert local.email == "John@Example.com"


def test_empty_remote_name_does_not_wipe_local_name(client, upstream):
    local = User.objects.create(username="kim@example.com", email="kim@example.com", last_name="K")
    upstream.profiles["u-8"] = {"firstName": "Kim", "lastName": ""}
    response = client.get("/api/default/", **bearer(make_token("u-8", "kim@example.com")))
    assert response.status_code == 200
    local.refresh_from_db()
    assert (local.first_name, local.last_name) == ("Kim", "K")


def test_simplejwt_token_is_left_to_simplejwt_in_both_orders(client, upstream):
    user = User.objects.create(username="local-only", email="local@example.com")
    token = str(AccessToken.for_user(user))
    for path in ("/api/remote-first/", "/api/simplejwt-first/", "/api/default/"):
        response = client.get(path, **bearer(token))
        assert response.status_code == 200, (path, response.content)
        assert response.json()["pk"] == user.pk
        assert response.json()["auth"] == "AccessToken"
    assert upstream.calls == 0


def test_remote_token_works_in_both_orders(client, upstream):
    token = make_token("u-9", "gina@example.com")
    for path in ("/api/remote-first/", "/api/simplejwt-first/"):
        response = client.get(path, **bearer(token))
        assert response.status_code == 200, (path, response.content)
        assert response.json()["auth"] == "RemoteAuth"


def test_pinned_simplejwt_view_accepts_remote_token_through_bridge(client, upstream):
    response = client.get("/api/auth/verify", **bearer(make_token("u-10", "hal@example.com")))
    assert response.status_code == 200, response.content
    assert response.json()["auth"] == "RemoteAuth"


def test_pinned_view_still_accepts_simplejwt_token_without_upstream(client, upstream):
    user = User.objects.create(username="ivy", email="ivy@example.com")
    response = client.get("/api/auth/verify", **bearer(str(AccessToken.for_user(user))))
    assert response.status_code == 200
    assert response.json()["pk"] == user.pk
    assert upstream.calls == 0


def test_issuer_mismatch_is_not_ours(client, upstream, settings):
    settings.AUTH_SERVICE_ISSUER = "rozitech-auth"
    foreign = make_token("u-11", "jo@example.com", iss="someone-else")
    response = client.get("/api/remote-first/", **bearer(foreign))
    # not ours, simplejwt cannot read it either: 401 from simplejwt, no upstream call
    assert response.status_code == 401
    assert upstream.calls == 0
    ours = make_token("u-11", "jo@example.com")
    assert client.get("/api/remote-first/", **bearer(ours)).status_code == 200
    assert upstream.calls == 1


def test_opaque_token_is_ours(client, upstream):
    response = client.get("/api/default/", HTTP_AUTHORIZATION="Bearer opaque-token-value")
    assert response.status_code == 401  # the stand-in rejects it: it was asked
    assert upstream.calls == 1


@pytest.mark.parametrize(
    "header",
    ["bearer {t}", "Bearer  {t}", "BEARER {t}"],
)
def test_scheme_case_and_extra_spaces_authenticate(client, upstream, header):
    token = make_token("u-12", "kate@example.com")
    response = client.get("/api/remote-first/", HTTP_AUTHORIZATION=header.format(t=token))
    assert response.status_code == 200, response.content
    assert response.json()["auth"] == "RemoteAuth"


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer a b", "Bearer a,Bearer b"])
def test_malformed_bearer_is_401_without_upstream_call(client, upstream, header):
    before = failures("malformed")
    response = client.get("/api/remote-first/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert upstream.calls == 0
    assert failures("malformed") == before + 1


def test_basic_credentials_are_left_to_other_classes(client, upstream):
    from rest_framework.test import APIRequestFactory

    from rozitech_remote_auth.authentication import RemoteJWTAuthentication

    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert RemoteJWTAuthentication().authenticate(request) is None
    assert client.get("/api/default/", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz").status_code == 401
    assert upstream.calls == 0


def test_no_header_is_401_with_www_authenticate(client, upstream):
    response = client.get("/api/default/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.django_db
def test_cached_pk_of_another_user_is_never_used(client, upstream):
    """A cache shared by app hosts with separate databases: the cached pk is another user here."""
    token = make_token("u-1", "alice@example.com")
    assert client.get("/api/default/", **bearer(token)).json()["email"] == "alice@example.com"
    User = get_user_model()
    alice = User.objects.get(email="alice@example.com")
    # On "another host" the same pk belongs to Bob, and Alice is not known yet.
    alice_pk = alice.pk
    alice.delete()
    bob = User.objects.create(pk=alice_pk, username="bob", email="bob@example.com")
    answer = client.get("/api/default/", **bearer(token))
    assert answer.status_code == 200
    assert answer.json()["email"] == "alice@example.com"
    assert answer.json()["pk"] != bob.pk
    assert upstream.calls == 1  # still served from the cache: only the local user was re-synced

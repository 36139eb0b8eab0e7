"""Unit tests of the small, pure modules: conf, bearer, tokens, retry_after, identity."""

from __future__ import annotations

import base64
import json
from email.utils import formatdate

import pytest
from django.core.exceptions import ImproperlyConfigured

from rozitech_remote_auth.bearer import MAX_TOKEN_LENGTH, MalformedBearer, parse_authorization
from rozitech_remote_auth.conf import RemoteAuthSettings, parse_settings
from rozitech_remote_auth.identity import MalformedIdentity, parse_me_response
from rozitech_remote_auth.retry_after import MAX_RETRY_AFTER, parse_retry_after
from rozitech_remote_auth.tokens import (
    cache_key,
    is_owned,
    negative_ttl,
    positive_ttl,
    unverified_claims,
)
from tests.support import make_token

# -- conf ----------------------------------------------------------------------------------------


def test_defaults():
    cfg = parse_settings({"AUTH_SERVICE_URL": "https://auth.rozitech.com/"})
    assert cfg == RemoteAuthSettings(url="https://auth.rozitech.com")
    assert (cfg.timeout, cfg.connect_timeout, cfg.total_timeout) == (5.0, 3.0, 8.0)
    assert (cfg.cache_ttl, cfg.negative_cache_ttl, cfg.token_leeway) == (300, 30, 30)
    assert (cfg.cache_alias, cfg.ca_bundle, cfg.retry_after) == ("default", None, 5)
    assert (cfg.breaker_fail_max, cfg.breaker_reset_timeout) == (5, 30.0)
    assert cfg.bridge_simplejwt is True
    assert cfg.issuer is None
    assert cfg.me_url == "https://auth.rozitech.com/api/auth/me"


def test_string_values_are_parsed():
    cfg = parse_settings(
        {
            "AUTH_SERVICE_URL": "https://auth.example.com:8443/prefix",
            "AUTH_SERVICE_TIMEOUT": "2.5",
            "AUTH_SERVICE_CACHE_TTL": "60",
            "AUTH_SERVICE_NEGATIVE_CACHE_TTL": "0",
            "AUTH_SERVICE_BRIDGE_SIMPLEJWT": "Off",
            "AUTH_SERVICE_CA_BUNDLE": "/etc/ssl/ca.pem",
            "AUTH_SERVICE_ISSUER": "rozitech-auth",
            "AUTH_SERVICE_CACHE_ALIAS": "  ",  # blank: default
        }
    )
    assert cfg.me_url == "https://auth.example.com:8443/prefix/api/auth/me"
    assert (cfg.timeout, cfg.cache_ttl, cfg.negative_cache_ttl) == (2.5, 60, 0)
    assert cfg.bridge_simplejwt is False
    assert (cfg.ca_bundle, cfg.issuer, cfg.cache_alias) == (
        "/etc/ssl/ca.pem",
        "rozitech-auth",
        "default",
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("AUTH_SERVICE_URL", None),
        ("AUTH_SERVICE_URL", "auth.rozitech.com"),
        ("AUTH_SERVICE_URL", "ftp://auth.rozitech.com"),
        ("AUTH_SERVICE_URL", "https://"),
        ("AUTH_SERVICE_URL", "https://user:pw@auth.rozitech.com"),
        ("AUTH_SERVICE_URL", "https://auth.rozitech.com:99999"),
        ("AUTH_SERVICE_TIMEOUT", "0"),
        ("AUTH_SERVICE_TIMEOUT", "-1"),
        ("AUTH_SERVICE_TIMEOUT", "nan"),
        ("AUTH_SERVICE_CONNECT_TIMEOUT", "fast"),
        ("AUTH_SERVICE_CACHE_TTL", "1.5"),
        ("AUTH_SERVICE_CACHE_TTL", "-5"),
        ("AUTH_SERVICE_RETRY_AFTER", "0"),
        ("AUTH_SERVICE_BREAKER_FAIL_MAX", "0"),
        ("AUTH_SERVICE_BRIDGE_SIMPLEJWT", "maybe"),
        ("AUTH_SERVICE_TOTAL_TIMEOUT", True),
    ],
)
def test_invalid_values_name_the_key(key, value):
    raw = {"AUTH_SERVICE_URL": "https://auth.rozitech.com", key: value}
    with pytest.raises(ImproperlyConfigured, match=key) as caught:
        parse_settings(raw)
    assert caught.value.key == key


# -- bearer (RFC 6750 §2.1) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Token abc", None),
        ("Bearerabc", None),
        ("Bearer abc.def-ghi_jkl~+/==", "abc.def-ghi_jkl~+/=="),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer   abc", "abc"),
        (b"Bearer abc", "abc"),
    ],
)
def test_bearer_parsing(header, token):
    assert parse_authorization(header) == token


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer a,Bearer b",
        "Bearer a=b",
        "Bearer é",
        'Bearer "a"',
    ],
)
def test_malformed_bearer(header):
    with pytest.raises(MalformedBearer):
        parse_authorization(header)


def test_overlong_token_is_malformed():
    with pytest.raises(MalformedBearer):
        parse_authorization("Bearer " + "a" * (MAX_TOKEN_LENGTH + 1))


def test_malformed_message_never_contains_the_token():
    with pytest.raises(MalformedBearer) as caught:
        parse_authorization("Bearer secret-part other-part")
    assert "secret" not in str(caught.value)


# -- tokens ----------------------------------------------------------------------------------------


def test_unverified_claims_of_auth_server_token():
    claims = unverified_claims(make_token("u-1", "a@example.com"))
    assert claims is not None
    assert (claims["userId"], claims["type"], claims["iss"]) == ("u-1", "access", "rozitech-auth")


@pytest.mark.parametrize("token", ["opaque", "a.b", "a.b.c", "e30.bm90IGpzb24.sig", "W10.e30.sig"])
def test_non_jwt_is_opaque(token):
    assert unverified_claims(token) is None


def test_ownership_rules():
    assert is_owned(None, None) is True  # opaque
    assert is_owned(None, "rozitech-auth") is True
    assert is_owned({"token_type": "access", "user_id": 1}, None) is False  # simplejwt
    assert is_owned({"iss": "rozitech-auth"}, "rozitech-auth") is True
    assert is_owned({"iss": "other"}, "rozitech-auth") is False
    assert is_owned({}, "rozitech-auth") is False
    assert is_owned({"iss": "other"}, None) is True


def test_cache_key_hashes_the_whole_token():
    first = make_token("u-a", "a@example.com")
    second = make_token("u-b", "b@example.com")
    assert first[:40] == second[:40]
    assert cache_key(first) != cache_key(second)
    assert cache_key(first) == cache_key(first)
    assert first not in cache_key(first)
    assert len(cache_key(first).rsplit(":", 1)[1]) == 64


def test_positive_ttl():
    now = 1_000_000.0
    assert positive_ttl({"exp": now + 3600}, 300, 30, now=now) == 300
    assert positive_ttl({"exp": now + 100}, 300, 30, now=now) == 70
    assert positive_ttl({"exp": now + 20}, 300, 30, now=now) == 0
    assert positive_ttl({"exp": now - 5}, 300, 30, now=now) == 0
    assert positive_ttl(None, 300, 30, now=now) == 300
    assert positive_ttl({"exp": "soon"}, 300, 30, now=now) == 300
    assert positive_ttl({"exp": now + 3600}, 0, 30, now=now) == 0


def test_negative_ttl_never_past_exp():
    now = 1_000_000.0
    assert negative_ttl({"exp": now + 3600}, 30, now=now) == 30
    assert negative_ttl({"exp": now + 10.9}, 30, now=now) == 10
    assert negative_ttl({"exp": now - 1}, 30, now=now) == 0
    assert negative_ttl(None, 30, now=now) == 30


# -- Retry-After (RFC 9110 §10.2.3) and rate-limit headers -------------------------------------


def test_retry_after_forms():
    now = 1_700_000_000.0
    assert parse_retry_after({"Retry-After": "30"}, now=now) == 30
    assert parse_retry_after({"Retry-After": formatdate(now + 42, usegmt=True)}, now=now) == 42
    assert parse_retry_after({"Retry-After": "0"}, now=now) == 1
    assert parse_retry_after({"Retry-After": "999999"}, now=now) == MAX_RETRY_AFTER
    assert parse_retry_after({"RateLimit-Reset": "17"}, now=now) == 17
    assert parse_retry_after({"RateLimit": "limit=150, remaining=0, reset=25"}, now=now) == 25
    assert parse_retry_after({"X-RateLimit-Reset": str(int(now) + 50)}, now=now) == 50
    assert parse_retry_after({"Retry-After": "garbage"}, now=now) is None
    assert parse_retry_after({}, now=now) is None
    both = {"Retry-After": "30", "RateLimit-Reset": "10"}
    assert parse_retry_after(both, now=now) == 30


# -- identity (R1 response forms) ----------------------------------------------------------------

USER = {"id": 7, "email": "a@example.com", "firstName": "A", "lastName": "B"}


def test_wrapped_form():
    identity = parse_me_response(
        {
            "success": True,
            "data": {"user": USER, "organization": {"id": "o1"}, "licenses": {"x": 1}},
        }
    )
    assert (identity.id, identity.email, identity.first_name, identity.last_name) == (
        "7",
        "a@example.com",
        "A",
        "B",
    )
    assert identity.organization_id == "o1"
    assert identity.licenses == {"x": 1}


def test_bare_form():
    identity = parse_me_response(
        {"user": {**USER, "emailVerified": True, "organization": {"id": 3}}}
    )
    assert identity.organization_id == "3"
    assert identity.email_verified is True
    assert identity.licenses is None


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        {"success": False, "data": {"user": USER}},
        {"data": {"nothing": 1}},
        {"user": {"id": 1}},
        {"user": {"email": "a@example.com"}},
        {"user": {"id": 1, "email": "not-an-email"}},
        {"user": {"id": 1, "email": ["a@example.com"]}},
        {"user": {**USER, "organization": "org"}},
    ],
)
def test_malformed_identity(body):
    with pytest.raises(MalformedIdentity):
        parse_me_response(body)


def test_identity_round_trips_through_cache_form():
    identity = parse_me_response({"user": {**USER, "organization": {"id": "o"}}})
    assert type(identity).from_dict(json.loads(json.dumps(identity.to_dict()))) == identity


def test_payload_segment_is_plain_base64url():
    token = make_token("u", "a@example.com")
    payload = token.split(".")[1]
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert decoded == unverified_claims(token)

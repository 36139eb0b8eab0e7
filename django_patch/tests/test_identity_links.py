"""Identity safety: local users follow the auth server's stable id; the linking policy; long values.

Written for any ``AUTH_USER_MODEL``: ``tests/test_backends.py`` runs this module again with the custom
model (e-mail as username, short fields) and on PostgreSQL.  Numbered tests are the inputs of the
issue "Identity safety" (attacks and accidents from public bug reports), each with the right value.
"""

from __future__ import annotations

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from rozitech_remote_auth.client import get_client
from rozitech_remote_auth.models import IdentityLink, LinkRefusal
from tests.support import AUTH_SECRET, bearer, failures, link_refusals, make_token

pytestmark = pytest.mark.django_db

User = get_user_model()
EMAIL = User.get_email_field_name()
EMAIL_IS_USERNAME = User.USERNAME_FIELD == EMAIL


def max_length(name: str) -> int:
    return int(User._meta.get_field(name).max_length)


def local_user(email: str, **extra) -> object:
    """A local user as the app made it before the rollout (any user model)."""
    values = {EMAIL: email, **extra}
    if not EMAIL_IS_USERNAME:
        values.setdefault(User.USERNAME_FIELD, f"local-{User.objects.count()}")
    return User.objects.create(**values)


def me(client, remote_id: str, email: str = "x@example.com", **claims):
    return client.get("/api/default/", **bearer(make_token(remote_id, email, **claims)))


# 1. Linking by e-mail hands over accounts (omab/django-social-auth#356) --------------------------------
def test_1_unverified_email_never_hands_over_a_superuser(client, upstream):
    admin = local_user(
        "admin@example.com", is_staff=True, is_superuser=True, first_name="Ada", last_name="Admin"
    )
    upstream.profiles["attacker-1"] = {
        "email": "Admin@Example.com",
        "emailVerified": False,
        "firstName": "Mallory",
        "lastName": "Evil",
    }
    before, refused = link_refusals("email_unverified"), failures("refused")

    response = me(client, "attacker-1")

    assert response.status_code == 403
    assert "not verified" in response.json()["detail"]
    assert link_refusals("email_unverified") == before + 1
    assert failures("refused") == refused + 1
    admin.refresh_from_db()
    assert (admin.first_name, admin.last_name, admin.email) == ("Ada", "Admin", "admin@example.com")
    assert not IdentityLink.objects.exists()
    refusal = LinkRefusal.objects.get()
    assert (refusal.remote_id, refusal.reason, refusal.user_id, refusal.count) == (
        "attacker-1",
        "email_unverified",
        admin.pk,
        1,
    )
    assert me(client, "attacker-1", jti="again").status_code == 403
    assert LinkRefusal.objects.get().count == 2


def test_1b_verified_email_still_never_links_a_privileged_account_by_default(
    client, upstream, settings
):
    admin = local_user("admin@example.com", is_staff=True, first_name="Ada")
    upstream.profiles["r-admin"] = {"email": "admin@example.com", "firstName": "Someone"}
    before = link_refusals("privileged_account")
    response = me(client, "r-admin")
    assert response.status_code == 403
    assert "staff or superuser" in response.json()["detail"]
    assert link_refusals("privileged_account") == before + 1
    admin.refresh_from_db()
    assert admin.first_name == "Ada"

    settings.AUTH_SERVICE_LINK_PRIVILEGED = True  # the operator's explicit choice
    response = me(client, "r-admin", jti="2")
    assert response.status_code == 200
    assert response.json()["pk"] == admin.pk
    assert IdentityLink.objects.get(remote_id="r-admin").method == "email"


# 2. E-mail is not an identity ---------------------------------------------------------------------------
def test_2_the_local_user_follows_the_remote_id_not_the_email(client, upstream):
    upstream.profiles["u-1"] = {"email": "old@example.com", "firstName": "Olga"}
    first = me(client, "u-1")
    assert first.status_code == 200
    olga = first.json()["pk"]

    upstream.profiles["u-1"] = {"email": "new@example.com", "firstName": "Olga"}
    moved = me(client, "u-1", jti="2")
    assert (moved.status_code, moved.json()["pk"], moved.json()["email"]) == (
        200,
        olga,
        "new@example.com",
    )
    assert User.objects.count() == 1

    # whoever is given the old address later gets an account of their own, not Olga's
    upstream.profiles["u-2"] = {"email": "old@example.com", "firstName": "Oscar"}
    other = me(client, "u-2")
    assert other.status_code == 200
    assert other.json()["pk"] != olga
    assert User.objects.get(pk=olga).first_name == "Olga"
    assert me(client, "u-1", jti="3").json()["pk"] == olga


def test_2b_existing_local_user_is_linked_once_by_verified_email(client, upstream):
    bob = local_user("Bob@Example.com", first_name="B")
    upstream.profiles["r-bob"] = {"email": "bob@example.com", "firstName": "Bob", "lastName": "B"}
    response = me(client, "r-bob")
    assert (response.status_code, response.json()["pk"]) == (200, bob.pk)
    link = IdentityLink.objects.get()
    assert (link.remote_id, link.user_id, link.method) == ("r-bob", bob.pk, "email")
    bob.refresh_from_db()
    assert (bob.first_name, bob.last_name) == ("Bob", "B")


def test_2c_absent_email_verified_is_not_verified(client, upstream, settings):
    carol = local_user("carol@example.com")
    upstream.profiles["r-carol"] = {"email": "carol@example.com", "emailVerified": None}
    assert me(client, "r-carol").status_code == 403
    settings.AUTH_SERVICE_LINK_REQUIRE_VERIFIED_EMAIL = False
    assert me(client, "r-carol", jti="2").json()["pk"] == carol.pk


def test_2d_two_remote_ids_one_email_is_refused_and_counted_never_merged(client, upstream):
    upstream.profiles["u-a"] = {"email": "shared@example.com"}
    owner = me(client, "u-a").json()["pk"]
    upstream.profiles["u-b"] = {"email": "Shared@Example.com"}
    before = link_refusals("linked_to_other")

    response = me(client, "u-b")

    assert response.status_code == 403
    assert "another auth-server user" in response.json()["detail"]
    assert link_refusals("linked_to_other") == before + 1
    assert User.objects.count() == 1
    assert list(IdentityLink.objects.values_list("remote_id", "user_id")) == [("u-a", owner)]
    assert LinkRefusal.objects.get().user_id == owner

    # the operator resolves it: u-a is gone at the auth server, u-b owns the address now
    call_command("remote_auth_links", "unlink", "u-a", verbosity=0)
    resolved = me(client, "u-b", jti="2")
    assert (resolved.status_code, resolved.json()["pk"]) == (200, owner)


def test_2e_several_local_users_with_the_email_is_a_conflict(client, upstream):
    local_user("dup@example.com")
    local_user("DUP@example.com")
    upstream.profiles["r-dup"] = {"email": "Dup@example.com"}
    before = link_refusals("ambiguous_email")
    response = me(client, "r-dup")
    assert response.status_code == 403
    assert link_refusals("ambiguous_email") == before + 1
    assert not IdentityLink.objects.exists()


def test_2f_linking_by_email_can_be_switched_off(client, upstream, settings):
    settings.AUTH_SERVICE_LINK_BY_EMAIL = False
    dora = local_user("dora@example.com")
    upstream.profiles["r-dora"] = {"email": "dora@example.com"}
    assert me(client, "r-dora").status_code == 403
    call_command("remote_auth_links", "link", "r-dora", dora.get_username(), verbosity=0)
    assert me(client, "r-dora", jti="2").json()["pk"] == dora.pk
    assert IdentityLink.objects.get().method == "manual"


def test_2g_a_cached_identity_follows_an_unlink(client, upstream):
    upstream.profiles["u-c"] = {"email": "cache@example.com"}
    token = make_token("u-c", "cache@example.com")
    pk = client.get("/api/default/", **bearer(token)).json()["pk"]
    IdentityLink.objects.all().delete()
    User.objects.filter(pk=pk).update(is_staff=True)  # now privileged: no automatic re-linking
    response = client.get("/api/default/", **bearer(token))  # answered from the cache
    assert response.status_code == 403
    assert upstream.calls == 1


# 3. Long values give 500 on PostgreSQL (idlesign/django-sitegate#2) ------------------------------------
# A valid 198-character address: 64-character local part, labels of at most 63.
LONG_EMAIL = "a" * 64 + "@" + "b" * 60 + "." + "b" * 60 + ".example"
LONG_EMAIL = LONG_EMAIL[: 198 - 4] + ".com" if len(LONG_EMAIL) > 198 else LONG_EMAIL


def test_3_long_email_and_names_fit_the_user_model_or_give_a_controlled_403(client, upstream):
    email = LONG_EMAIL + "x" * (198 - len(LONG_EMAIL))
    assert len(email) == 198
    twin = email[:-1] + "y"  # same first 197 characters
    upstream.profiles["u-long"] = {"email": email, "firstName": "F" * 200, "lastName": "L" * 200}
    upstream.profiles["u-twin"] = {"email": twin, "firstName": "T" * 200}
    before = link_refusals("unrepresentable")

    first, second = me(client, "u-long"), me(client, "u-twin")

    if len(email) <= max_length(EMAIL):  # auth.User: 254
        assert (first.status_code, second.status_code) == (200, 200)
        user = User.objects.get(pk=first.json()["pk"])
        assert user.email == email
        assert user.first_name == "F" * max_length("first_name")
        assert user.last_name == "L" * max_length("last_name")
        usernames = {u.get_username() for u in User.objects.all()}
        assert len(usernames) == 2
        assert all(len(name) <= max_length(User.USERNAME_FIELD) for name in usernames)
        assert link_refusals("unrepresentable") == before
    else:  # customuser.EmailUser: 64, and the e-mail is the username
        assert (first.status_code, second.status_code) == (403, 403)
        assert "cannot be represented" in first.json()["detail"]
        assert link_refusals("unrepresentable") == before + 2
        assert not User.objects.exists()


def test_3b_a_200_character_first_name_is_cut_not_a_500(client, upstream):
    upstream.profiles["u-name"] = {"email": "n@example.com", "firstName": "É" * 200}
    response = me(client, "u-name")
    assert response.status_code == 200
    assert response.json()["first_name"] == "É" * max_length("first_name")
    upstream.profiles["u-name"] = {"email": "n@example.com", "firstName": "Z" * 300 + "\x00"}
    response = me(client, "u-name", jti="2")
    assert response.status_code == 200
    assert response.json()["first_name"] == "Z" * max_length("first_name")


# 5. One user's bad answer opens the circuit for all (eljam/circuit-breaker#9) ----------------------------
@pytest.mark.parametrize("bad", ["no_email", "401", "403"])
def test_5_answers_about_one_identity_never_open_the_circuit(client, upstream, settings, bad):
    def behaviour(handler, info):
        claims = jwt.decode(info["token"], AUTH_SECRET, algorithms=["HS256"])
        if claims["userId"] != "u-bad":
            return False
        if bad == "no_email":
            handler.send_json(200, {"success": True, "data": {"user": {"id": "u-bad"}}})
        else:
            handler.send_json(int(bad), {"success": False})
        return True

    upstream.behaviour = behaviour
    expected = {"no_email": 503, "401": 401, "403": 403}[bad]
    retries = settings.AUTH_SERVICE_BREAKER_FAIL_MAX + 2
    for attempt in range(retries):
        response = me(client, "u-bad", jti=str(attempt))
        assert response.status_code == expected
        if expected == 503:
            assert response["Retry-After"] == "5"
    assert get_client().breaker.current_state == "closed"

    good = me(client, "u-good", "good@example.com")
    assert good.status_code == 200
    assert upstream.calls == retries + 1, "the other user's token was verified upstream"

"""Local Django users for remote identities (DESIGN §4.6).

* match: the user model's e-mail field, case-insensitively (``John@Example.com`` locally and
  ``john@example.com`` remotely are the same user); several matches: the exact spelling, else
  the lowest pk.  No e-mail match: a user whose ``USERNAME_FIELD`` equals the e-mail
  (case-insensitively), as earlier integrations created them;
* create when missing: ``USERNAME_FIELD`` = e-mail as the auth server spells it, e-mail, names,
  an unusable local password.  Concurrent first logins: the losers of the unique-username race
  get ``IntegrityError`` inside a savepoint and re-read the winner's row: no duplicate, no 500;
* update ``first_name``/``last_name`` when the auth server sends a non-empty, different value
  (an empty remote name never wipes a local one).
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import IntegrityError, router, transaction

from .identity import RemoteIdentity

__all__ = ["get_cached_user", "sync_user"]

logger = logging.getLogger("rozitech_remote_auth")

_NAME_FIELDS = (("first_name", "first_name"), ("last_name", "last_name"))


def _has_field(model: Any, name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


def _find(model: Any, email: str) -> Any | None:
    manager = model._default_manager
    email_field = model.get_email_field_name()
    matches = list(manager.filter(**{f"{email_field}__iexact": email}).order_by("pk")[:10])
    if not matches and email_field != model.USERNAME_FIELD:
        matches = list(
            manager.filter(**{f"{model.USERNAME_FIELD}__iexact": email}).order_by("pk")[:10]
        )
    if len(matches) > 1:
        logger.warning(
            "%d local users match one remote e-mail case-insensitively; using one of them",
            len(matches),
        )
        for user in matches:
            if getattr(user, email_field, None) == email:
                return user
    return matches[0] if matches else None


def _update_names(user: Any, identity: RemoteIdentity) -> None:
    changed = []
    for attr, source in _NAME_FIELDS:
        value = getattr(identity, source)
        if value and _has_field(type(user), attr) and getattr(user, attr) != value:
            setattr(user, attr, value)
            changed.append(attr)
    if changed:
        user.save(update_fields=changed)


def _create(model: Any, identity: RemoteIdentity) -> Any:
    email_field = model.get_email_field_name()
    values: dict[str, Any] = {model.USERNAME_FIELD: identity.email}
    if _has_field(model, email_field):
        values[email_field] = identity.email
    for attr, source in _NAME_FIELDS:
        if _has_field(model, attr):
            values[attr] = getattr(identity, source)
    user = model(**values)
    user.set_unusable_password()
    try:
        with transaction.atomic(using=router.db_for_write(model)):
            user.save(force_insert=True)
    except IntegrityError:
        existing = _find(model, identity.email)
        if existing is None:
            raise
        _update_names(existing, identity)
        return existing
    logger.info("created local user for a new remote identity")
    return user


def sync_user(identity: RemoteIdentity) -> Any:
    """The local user for ``identity``: found (names updated) or created.

    Raises ``IntegrityError`` only when creation fails for a reason other than a concurrent
    creation of the same user (then no matching row exists afterwards either).
    """
    model = get_user_model()
    user = _find(model, identity.email)
    if user is None:
        return _create(model, identity)
    _update_names(user, identity)
    return user


def _belongs_to(user: Any, email: str) -> bool:
    """Whether ``user`` is who :func:`_find` would pick for ``email`` (e-mail or username)."""
    model = type(user)
    wanted = email.casefold()
    fields = {model.get_email_field_name(), model.USERNAME_FIELD}
    return any(str(getattr(user, field, "") or "").casefold() == wanted for field in fields)


def get_cached_user(user_pk: Any, identity: RemoteIdentity) -> Any:
    """The local user with ``user_pk`` (from a cache entry), if it is still the identity's user.

    Re-synced by e-mail (:func:`sync_user`) when that pk no longer exists or now belongs to someone
    else: a cache shared by app hosts with separate databases, or a pk reused after a deletion,
    must never hand one user another's account.
    """
    model = get_user_model()
    user = model._default_manager.filter(pk=user_pk).first()
    if user is not None and _belongs_to(user, identity.email):
        return user
    return sync_user(identity)

"""Local Django users for remote identities, bound by the auth server's stable user id.

The local user of a remote identity is the one its :class:`~.models.IdentityLink` names
(``remote_id`` = ``user.id`` of ``GET /api/auth/me``), for life.  E-mail and names are attributes,
synced from the auth server at each verification.  Without a link (a remote id seen for the first
time):

* no local user has the e-mail (e-mail field, case-insensitively; or an unlinked user whose
  ``USERNAME_FIELD`` equals it, as earlier integrations created them): a local user is **created**
  (username derived from the e-mail so that it fits and stays unique, an unusable password) and
  linked;
* exactly one unlinked local user has it: that user is **linked** when the linking policy allows:
  ``AUTH_SERVICE_LINK_BY_EMAIL`` (default true), the auth server says ``emailVerified: true``
  (``AUTH_SERVICE_LINK_REQUIRE_VERIFIED_EMAIL``, default true) and the user is neither staff nor
  superuser (unless ``AUTH_SERVICE_LINK_PRIVILEGED``, default false);
* otherwise :class:`LinkRefused` (a 403 naming the reason): the local user it would have taken is
  linked to another remote id (two remote ids, one e-mail), several local users share the e-mail,
  or the policy forbids it.  Refusals are counted
  (``rozitech_remote_auth_link_refusals_total{reason}``) and recorded
  (:class:`~.models.LinkRefusal`) for ``manage.py remote_auth_links report``; nothing is merged.

Values are fitted to ``AUTH_USER_MODEL``'s field lengths (names cut; the username derived); an
identity the model cannot hold (an e-mail longer than its e-mail field, a row the database refuses)
is :class:`LinkRefused` with reason ``unrepresentable``, never a 500.  Concurrent first logins
create one user and one link (the losers of the unique-constraint race re-read the winner's link).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import DatabaseError, IntegrityError, router, transaction
from django.db.models import F
from django.utils import timezone

from . import metrics
from .conf import get_settings
from .identity import RemoteIdentity

__all__ = ["LinkRefused", "get_cached_user", "sync_user"]

logger = logging.getLogger("rozitech_remote_auth")

_NAME_FIELDS = (("first_name", "first_name"), ("last_name", "last_name"))
#: ``last_seen_at`` of a link is written at most this often (one UPDATE per hour per user).
_SEEN_EVERY = timedelta(hours=1)

_MESSAGES = {
    "email_unverified": "The auth server has not verified this e-mail address; an existing local "
    "account is linked only to a verified address.",
    "privileged_account": "The local account with this e-mail is a staff or superuser account; it "
    "is not linked automatically. Ask an administrator to link it.",
    "linked_to_other": "The local account with this e-mail belongs to another auth-server user. "
    "Ask an administrator to resolve the conflict.",
    "ambiguous_email": "Several local accounts have this e-mail address. Ask an administrator to "
    "link the right one.",
    "linking_disabled": "A local account has this e-mail address and automatic linking is off. "
    "Ask an administrator to link it.",
    "unrepresentable": "This account cannot be represented locally (a value does not fit the "
    "local user model).",
}


class LinkRefused(Exception):
    """No local user may be given to the identity; ``reason`` is one of
    :data:`~.metrics.LINK_REFUSAL_REASONS`, ``str()`` a message for the 403 (no personal data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason = reason


def _models() -> tuple[Any, Any, Any]:
    from .models import IdentityLink, LinkRefusal

    return get_user_model(), IdentityLink, LinkRefusal


def _field(model: Any, name: str) -> Any | None:
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


def _fits(model: Any, name: str, value: str) -> bool:
    field = _field(model, name)
    limit = getattr(field, "max_length", None)
    return limit is None or len(value) <= limit


def _cut(model: Any, name: str, value: str) -> str:
    limit = getattr(_field(model, name), "max_length", None)
    return value if limit is None else value[:limit]


def _digest(remote_id: str) -> str:
    return hashlib.sha256(remote_id.encode("utf-8", "surrogatepass")).hexdigest()


def _usernames(model: Any, identity: RemoteIdentity) -> Iterator[str]:
    """Usernames to try for a new user: the e-mail when it fits, then e-mail cut + id hash."""
    field = model.USERNAME_FIELD
    email = identity.email
    if field == model.get_email_field_name():
        yield email  # the username is the e-mail itself (fit checked by the caller)
        return
    limit = getattr(_field(model, field), "max_length", None)
    suffix = "-" + _digest(identity.id)[:10]
    if limit is None or len(email) <= limit:
        yield email
    if limit is None:
        yield email + suffix
    elif limit > len(suffix):
        yield email[: limit - len(suffix)] + suffix
    else:
        yield _digest(identity.id)[:limit]


def _privileged(user: Any) -> bool:
    return bool(getattr(user, "is_staff", False) or getattr(user, "is_superuser", False))


def _record_refusal(reason: str, identity: RemoteIdentity, user: Any | None) -> None:
    _, _, refusal_model = _models()
    now = timezone.now()
    values = {"remote_id": identity.id, "reason": reason}
    try:
        with transaction.atomic(using=router.db_for_write(refusal_model)):
            updated = refusal_model._default_manager.filter(**values).update(
                count=F("count") + 1,
                last_seen_at=now,
                email=identity.email[:320],
                user=user,
            )
            if not updated:
                refusal_model._default_manager.create(
                    **values, email=identity.email[:320], user=user, first_seen_at=now
                )
    except DatabaseError as exc:  # a record is for the report; it never decides the answer
        logger.warning("could not record a refused identity link: %s", type(exc).__name__)


def _refuse(reason: str, identity: RemoteIdentity, user: Any | None = None) -> LinkRefused:
    metrics.record_link_refusal(reason)
    _record_refusal(reason, identity, user)
    logger.warning("refused to link a remote identity to a local user: reason=%s", reason)
    return LinkRefused(reason)


def _candidates(model: Any, link_model: Any, email: str) -> tuple[list[Any], list[Any]]:
    """Local users that may be the e-mail's owner: ``(by e-mail, unlinked by username)``."""
    manager = model._default_manager
    email_field = model.get_email_field_name()
    by_email: list[Any] = []
    if _field(model, email_field) is not None:
        by_email = list(manager.filter(**{f"{email_field}__iexact": email}).order_by("pk")[:10])
    by_username: list[Any] = []
    if email_field != model.USERNAME_FIELD:
        linked = link_model._default_manager.values("user_id")
        by_username = list(
            manager.filter(**{f"{model.USERNAME_FIELD}__iexact": email})
            .exclude(pk__in=[user.pk for user in by_email])
            .exclude(pk__in=linked)
            .order_by("pk")[:10]
        )
    return by_email, by_username


def _sync_attributes(user: Any, identity: RemoteIdentity) -> None:
    """E-mail and non-empty names from the auth server, fitted; an e-mail another user holds under
    a unique constraint, or one too long for the field, is left as it is."""
    model = type(user)
    email_field = model.get_email_field_name()
    changes: dict[str, str] = {}
    current = str(getattr(user, email_field, "") or "")
    if _field(model, email_field) is not None and current.casefold() != identity.email.casefold():
        if _fits(model, email_field, identity.email):
            changes[email_field] = identity.email
        else:
            logger.warning("remote e-mail does not fit the local user model; kept the old one")
    for attr, source in _NAME_FIELDS:
        value = getattr(identity, source)
        if value and _field(model, attr) is not None:
            value = _cut(model, attr, value)
            if getattr(user, attr) != value:
                changes[attr] = value
    if not changes:
        return
    using = router.db_for_write(model, instance=user)
    for attempt in (changes, {k: v for k, v in changes.items() if k != email_field}):
        if not attempt:
            return
        try:
            with transaction.atomic(using=using):
                model._default_manager.db_manager(using).filter(pk=user.pk).update(**attempt)
        except (IntegrityError, DatabaseError):
            logger.warning("local user attributes not updated (%s)", ", ".join(sorted(attempt)))
            continue
        for name, value in attempt.items():
            setattr(user, name, value)
        return


def _link(link_model: Any, user: Any, identity: RemoteIdentity, method: str) -> Any:
    link = link_model(remote_id=identity.id, user=user, method=method)
    link.save(force_insert=True)
    return link


def _winner(link_model: Any, identity: RemoteIdentity) -> Any | None:
    """The local user a concurrent request linked to ``identity.id`` meanwhile, if any."""
    link = link_model._default_manager.select_related("user").filter(remote_id=identity.id).first()
    return link.user if link is not None else None


def _create(model: Any, link_model: Any, identity: RemoteIdentity) -> Any:
    email_field = model.get_email_field_name()
    has_email = _field(model, email_field) is not None
    if has_email and not _fits(model, email_field, identity.email):
        raise _refuse("unrepresentable", identity)
    for username in _usernames(model, identity):
        values: dict[str, Any] = {model.USERNAME_FIELD: username}
        if has_email:
            values[email_field] = identity.email
        for attr, source in _NAME_FIELDS:
            if _field(model, attr) is not None:
                values[attr] = _cut(model, attr, getattr(identity, source))
        user = model(**values)
        user.set_unusable_password()
        try:
            with transaction.atomic(using=router.db_for_write(model)):
                user.save(force_insert=True)
                _link(link_model, user, identity, "created")
        except IntegrityError:
            winner = _winner(link_model, identity)
            if winner is not None:  # a concurrent first login of the same remote user
                _sync_attributes(winner, identity)
                return winner
            continue  # the username belongs to someone else: try the next one
        except DatabaseError as exc:  # e.g. DataError: a value the database does not take
            logger.warning("local user not created: %s", type(exc).__name__)
            break
        logger.info("created and linked a local user for a new remote identity")
        return user
    raise _refuse("unrepresentable", identity)


def _link_existing(link_model: Any, user: Any, identity: RemoteIdentity) -> Any:
    cfg = get_settings()
    if not cfg.link_by_email:
        raise _refuse("linking_disabled", identity, user)
    if cfg.link_require_verified_email and identity.email_verified is not True:
        raise _refuse("email_unverified", identity, user)
    if _privileged(user) and not cfg.link_privileged:
        raise _refuse("privileged_account", identity, user)
    try:
        with transaction.atomic(using=router.db_for_write(link_model)):
            _link(link_model, user, identity, "email")
    except IntegrityError:
        winner = _winner(link_model, identity)
        if winner is not None and winner.pk == user.pk:
            return winner  # a concurrent first login linked the same pair
        raise _refuse("linked_to_other", identity, user) from None
    logger.info("linked an existing local user to a remote identity by verified e-mail")
    _sync_attributes(user, identity)
    return user


def sync_user(identity: RemoteIdentity) -> Any:
    """The local user for ``identity``: the linked one (attributes synced), else linked or created.

    Raises :class:`LinkRefused` (counted, recorded) when no local user may be given to it; database
    errors other than constraint races propagate.
    """
    model, link_model, _ = _models()
    link = link_model._default_manager.select_related("user").filter(remote_id=identity.id).first()
    if link is not None:
        _sync_attributes(link.user, identity)
        if timezone.now() - link.last_seen_at > _SEEN_EVERY:
            link_model._default_manager.filter(pk=link.pk).update(last_seen_at=timezone.now())
        return link.user
    by_email, by_username = _candidates(model, link_model, identity.email)
    if by_email:
        linked = set(
            link_model._default_manager.filter(user__in=by_email).values_list("user_id", flat=True)
        )
        if linked:
            owner = next(user for user in by_email if user.pk in linked)
            raise _refuse("linked_to_other", identity, owner)
    candidates = by_email + by_username
    if len(candidates) > 1:
        raise _refuse("ambiguous_email", identity)
    if candidates:
        return _link_existing(link_model, candidates[0], identity)
    return _create(model, link_model, identity)


def get_cached_user(user_pk: Any, identity: RemoteIdentity) -> Any:
    """The local user with ``user_pk`` (from a cache entry), if it is still linked to the identity.

    Re-synced (:func:`sync_user`) when the link now names another user or none (unlinked by the
    operator, a pk reused after a deletion, a cache shared by hosts with separate databases): a
    cache entry never hands one user another's account.  Raises :class:`LinkRefused` like
    :func:`sync_user`.
    """
    _, link_model, _ = _models()
    link = link_model._default_manager.select_related("user").filter(remote_id=identity.id).first()
    if link is not None and link.user_id == user_pk:
        return link.user
    return sync_user(identity)

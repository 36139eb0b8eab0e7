"""Database tables of the patch: the stable-id link and the record of refused links.

* :class:`IdentityLink` (table ``rozitech_remote_auth_identitylink``): one row per remote user id
  (the auth server's ``user.id`` from ``GET /api/auth/me``), pointing at exactly one local user
  (``AUTH_USER_MODEL``, whatever it is).  The local user follows the remote id for life; e-mail and
  names are attributes synced from the auth server (:mod:`.users`).
* :class:`LinkRefusal` (table ``rozitech_remote_auth_linkrefusal``): what :mod:`.users` refused
  to link, one row per ``(remote id, reason)`` with a count, for
  ``manage.py remote_auth_links report``.

Rollback of the rollout leaves both tables in place (the app no longer loads the patch, so nothing
reads them); a later rollout finds the links again.  ``manage.py migrate rozitech_remote_auth zero``
(with the patch's settings overlay) drops them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from .identity import MAX_ID_LENGTH
from .metrics import LINK_REFUSAL_REASONS

__all__ = ["REFUSAL_REASONS", "IdentityLink", "LinkRefusal"]

#: ``LinkRefusal.reason`` values (label ``reason`` of ``rozitech_remote_auth_link_refusals_total``).
REFUSAL_REASONS = LINK_REFUSAL_REASONS


class IdentityLink(models.Model):
    """Remote user id ↔ local user, one to one.

    ``method``: ``created`` (the patch created the local user), ``email`` (an existing local user
    linked at its first login by a verified e-mail) or ``manual`` (``remote_auth_links link``).
    """

    METHODS = (("created", "created"), ("email", "email"), ("manual", "manual"))

    remote_id = models.CharField(max_length=MAX_ID_LENGTH, unique=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="remote_auth_link"
    )
    method = models.CharField(max_length=16, choices=METHODS)
    linked_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "remote identity link"

    def __str__(self) -> str:
        return f"remote {self.remote_id} -> local user {self.user_id}"


class LinkRefusal(models.Model):
    """A refused link, counted per ``(remote_id, reason)``; ``user`` is the local user it would have
    taken (``None`` when none or since deleted), ``email`` the e-mail the auth server sent (cut to
    320 characters)."""

    remote_id = models.CharField(max_length=MAX_ID_LENGTH)
    reason = models.CharField(max_length=32)
    email = models.CharField(max_length=320, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    count = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "refused remote identity link"
        constraints = (
            models.UniqueConstraint(
                fields=("remote_id", "reason"), name="rozitech_remote_auth_refusal_once"
            ),
        )

    def __str__(self) -> str:
        return f"remote {self.remote_id}: {self.reason} x{self.count}"

"""``manage.py remote_auth_links``: the stable-id links between auth-server users and local users.

Subcommands (run with the patch's settings:
``DJANGO_SETTINGS_MODULE=rozitech_remote_auth.settings_overlay``):

* ``report [--json] [--limit N] [--fail-on-conflicts]``: before the rollout and after it, the local
  users not yet linked, grouped by what their first login will do under the linking policy
  (``will_link``, ``privileged``, ``duplicate_email``, ``no_email``, ``manual_only``), and the
  recorded conflicts (refused links: reason, remote id, local user, count, first/last seen).
  ``--fail-on-conflicts`` exits 1 when there are conflicts or duplicate e-mails;
* ``link REMOTE_ID USERNAME [--replace]``: bind a remote id to a local user by hand (method
  ``manual``; ``--replace`` moves an existing link of either side); clears its recorded refusals;
* ``unlink REMOTE_ID``: remove a link (the local user stays; the remote user's next login links or
  creates again under the policy);
* ``forget-refusals [REMOTE_ID]``: clear recorded refusals (all, or one remote id's).

Errors (unknown user or remote id, a link that exists) are ``CommandError`` (exit 1) naming the
argument.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections, router, transaction
from django.db.models import Count
from django.db.models.functions import Lower

from rozitech_remote_auth.conf import get_settings
from rozitech_remote_auth.models import IdentityLink, LinkRefusal

#: What the first login of an unlinked local user will do, in report order.
GROUPS = {
    "will_link": "linked at the first login with a verified e-mail",
    "privileged": "staff/superuser: refused unless AUTH_SERVICE_LINK_PRIVILEGED (or link by hand)",
    "duplicate_email": "e-mail shared with another local user: refused (conflict), link by hand",
    "no_email": "no e-mail: never linked automatically (link by hand if needed)",
    "manual_only": "AUTH_SERVICE_LINK_BY_EMAIL is off: only `link` binds it",
}


class Command(BaseCommand):
    verbosity = 1
    help = "Report, create and remove links between auth-server user ids and local users."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        report = sub.add_parser("report", help="unlinked local users and conflicts")
        report.add_argument("--json", action="store_true", help="machine-readable output")
        report.add_argument("--limit", type=int, default=50, help="rows per group (default 50)")
        report.add_argument(
            "--fail-on-conflicts",
            action="store_true",
            help="exit 1 when there are conflicts or duplicate e-mails",
        )
        link = sub.add_parser("link", help="bind REMOTE_ID to the local user USERNAME")
        link.add_argument("remote_id")
        link.add_argument("username", help="the local user's USERNAME_FIELD value")
        link.add_argument("--replace", action="store_true", help="move existing links")
        unlink = sub.add_parser("unlink", help="remove the link of REMOTE_ID")
        unlink.add_argument("remote_id")
        forget = sub.add_parser("forget-refusals", help="clear recorded refusals")
        forget.add_argument("remote_id", nargs="?")

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = int(options.get("verbosity", 1))
        action = options["action"]
        if action == "report":
            self._report(options)
        elif action == "link":
            self._link(options["remote_id"], options["username"], replace=options["replace"])
        elif action == "unlink":
            deleted, _ = IdentityLink.objects.filter(remote_id=options["remote_id"]).delete()
            if not deleted:
                raise CommandError(f"remote_id {options['remote_id']!r}: no such link")
            self._say(f"unlinked remote id {options['remote_id']}")
        else:
            refusals = LinkRefusal.objects.all()
            if options["remote_id"]:
                refusals = refusals.filter(remote_id=options["remote_id"])
            deleted, _ = refusals.delete()
            self._say(f"forgot {deleted} recorded refusal(s)")

    def _say(self, text: str) -> None:
        if self.verbosity:
            self.stdout.write(text)

    # -- link ------------------------------------------------------------------------------
    def _link(self, remote_id: str, username: str, *, replace: bool) -> None:
        model = get_user_model()
        try:
            user = model._default_manager.get_by_natural_key(username)
        except model.DoesNotExist:
            raise CommandError(f"username {username!r}: no such local user") from None
        with transaction.atomic():
            taken = IdentityLink.objects.filter(remote_id=remote_id).exclude(user=user)
            owned = IdentityLink.objects.filter(user=user).exclude(remote_id=remote_id)
            if (taken.exists() or owned.exists()) and not replace:
                raise CommandError(
                    f"remote_id {remote_id!r} or username {username!r} is linked already "
                    "(unlink first, or pass --replace)"
                )
            taken.delete()
            owned.delete()
            IdentityLink.objects.update_or_create(
                remote_id=remote_id, defaults={"user": user, "method": "manual"}
            )
            LinkRefusal.objects.filter(remote_id=remote_id).delete()
        self._say(f"linked remote id {remote_id} to local user {username}")

    # -- report ----------------------------------------------------------------------------
    def _report(self, options: dict[str, Any]) -> None:
        data = build_report(limit=options["limit"])
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2, default=str))
        else:
            self._print(data)
        conflicts = data["conflicts"]["count"] + data["unlinked"]["duplicate_email"]["count"]
        if options["fail_on_conflicts"] and conflicts:
            raise CommandError(f"{conflicts} conflict(s): see the runbook, 'Identity linking'")

    def _print(self, data: dict[str, Any]) -> None:
        out = self.stdout.write
        policy = data["policy"]
        out(
            "Linking policy: by e-mail={link_by_email}, verified e-mail required="
            "{link_require_verified_email}, privileged accounts={link_privileged}".format(**policy)
        )
        if not data["migrated"]:
            out("The link tables do not exist yet (the rollout creates them): nothing is linked.")
        out(
            f"Local users: {data['users']}, linked: {data['linked']}, "
            f"not linked: {data['users'] - data['linked']}"
        )
        for group, text in GROUPS.items():
            block = data["unlinked"][group]
            if not block["count"]:
                continue
            out(f"\n{group} ({block['count']}): {text}")
            for row in block["rows"]:
                out(f"  pk={row['pk']}  {row['username']}  <{row['email']}>")
            if block["count"] > len(block["rows"]):
                out(f"  ... {block['count'] - len(block['rows'])} more (--limit, --json)")
        conflicts = data["conflicts"]
        out(f"\nConflicts (refused links): {conflicts['count']}")
        for row in conflicts["rows"]:
            out(
                f"  {row['reason']}: remote id {row['remote_id']} <{row['email']}> -> local "
                f"user {row['username'] or '-'} (x{row['count']}, last {row['last_seen_at']})"
            )


def build_report(limit: int = 50) -> dict[str, Any]:
    """The report as a dict: policy, counts, unlinked users by group, recorded conflicts."""
    model = get_user_model()
    cfg = get_settings()
    email_field = model.get_email_field_name()
    has_email = email_field in {f.name for f in model._meta.get_fields()}
    manager = model._default_manager
    # Before the rollout the patch's tables do not exist yet: every local user is unlinked.
    connection = connections[router.db_for_read(IdentityLink)]
    migrated = IdentityLink._meta.db_table in connection.introspection.table_names()
    unlinked = manager.order_by("pk")
    if migrated:
        unlinked = unlinked.exclude(pk__in=IdentityLink.objects.values("user_id"))
    duplicates: set[str] = set()
    if has_email:
        duplicates = set(
            manager.exclude(**{email_field: ""})
            .annotate(folded=Lower(email_field))
            .values("folded")
            .annotate(n=Count("pk"))
            .filter(n__gt=1)
            .values_list("folded", flat=True)
        )
    groups: dict[str, dict[str, Any]] = {name: {"count": 0, "rows": []} for name in GROUPS}
    for user in unlinked.iterator():
        email = str(getattr(user, email_field, "") or "") if has_email else ""
        if not email:
            group = "no_email"
        elif email.lower() in duplicates:
            group = "duplicate_email"
        elif not cfg.link_by_email:
            group = "manual_only"
        elif getattr(user, "is_staff", False) or getattr(user, "is_superuser", False):
            group = "privileged" if not cfg.link_privileged else "will_link"
        else:
            group = "will_link"
        block = groups[group]
        block["count"] += 1
        if len(block["rows"]) < limit:
            block["rows"].append({"pk": user.pk, "username": user.get_username(), "email": email})
    refusals = LinkRefusal.objects.select_related("user").order_by("-last_seen_at")
    if not migrated:
        refusals = refusals.none()
    rows = [
        {
            "reason": r.reason,
            "remote_id": r.remote_id,
            "email": r.email,
            "username": r.user.get_username() if r.user is not None else None,
            "count": r.count,
            "first_seen_at": r.first_seen_at,
            "last_seen_at": r.last_seen_at,
        }
        for r in refusals[:limit]
    ]
    return {
        "policy": {
            "link_by_email": cfg.link_by_email,
            "link_require_verified_email": cfg.link_require_verified_email,
            "link_privileged": cfg.link_privileged,
        },
        "migrated": migrated,
        "users": manager.count(),
        "linked": IdentityLink.objects.count() if migrated else 0,
        "unlinked": groups,
        "conflicts": {"count": refusals.count(), "rows": rows},
    }

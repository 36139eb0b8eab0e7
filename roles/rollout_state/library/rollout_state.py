#!/usr/bin/python
# Copyright: rozitech-auth-rollout contributors. GNU General Public License v3.0+.
"""Ansible module: rollout-state records (backup/restore) on a managed host.

Layout on the host (``state_dir``, default ``/var/lib/rozitech-rollout``, mode 0700)::

    current                      text file: the id of the latest release (the rollback pointer)
    releases/<id>/release.json   {"id", "created", "previous", "status", "items": [...]}
    releases/<id>/files/<key>    byte-exact backup of a recorded file (mode 0600)

A release is opened lazily by the first ``record_*`` call of a run, so a run that changes nothing
writes nothing. Items are recorded once per release: the first record is the state before the release.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: rollout_state
short_description: Record what a rollout touches on a host, and restore it
description:
  - C(record_file) records a file's state (existed, sha256, mode, owner, group, byte-exact backup) before
    a role changes it, once per release.
  - C(record_venv) records a virtualenv's package set (C(pip freeze --all)).
  - C(restore) puts recorded items back in reverse order (files byte for byte, absent files removed,
    package sets reconciled) for the latest release or every release back to O(release).
  - C(prune) keeps the newest O(retention) releases (by their recorded creation time) and the current one.
  - C(info) reports the pointer and the releases with their items.
  - C(plan) runs on the controller: from every host's C(info) result (O(hosts)) it decides which runs a rollback
    undoes, the same runs on every host. "Latest" is the newest run still applied on any host (runs are
    ordered by the earliest time any host recorded them); a host that run did not change is left alone.
options:
  action:
    description: What to do.
    type: str
    required: true
    choices: [record_file, record_venv, restore, prune, info, plan]
  state_dir:
    description: Where records live on the host.
    type: path
    default: /var/lib/rozitech-rollout
  release:
    description:
      - For C(record_*), the id of this run's release (letters, digits, C(.-_T:Z)).
      - For C(restore), the release to go back before; omitted means the current one; C(all) means the
        oldest release kept on the host (so every recorded change is undone).
      - A default release id (the run's UTC start, C(YYYYmmddTHHMMSSZ)) that a host never recorded (that run
        changed nothing there) undoes the host's releases created since that time.
      - For C(plan), the same meanings across every host; omitted means the newest run still applied anywhere.
    type: str
  releases:
    description:
      - For C(restore), exactly these release ids (from C(plan)), newest first on this host; ids this host
        does not hold, or already rolled back, are skipped. Overrides O(release).
    type: list
    elements: str
  hosts:
    description: For C(plan), each host's C(releases) list as returned by C(info) (C({host: [release, ...]})).
    type: dict
  release_name:
    description: For C(plan), the variable named in error messages about O(release).
    type: str
    default: release
  path:
    description: File path for C(record_file); virtualenv root for C(record_venv).
    type: path
  component:
    description: Label of the role that recorded the item (reported by C(restore)).
    type: str
    default: unknown
  sensitive:
    description: Never return the file content in a diff (secrets).
    type: bool
    default: false
  missing_ok:
    description: For C(restore) of a named O(release) that this host never recorded, report instead of failing.
    type: bool
    default: false
  discard:
    description:
      - For C(restore) by the automatic rollback of a failed run. The release is marked C(failed) and the
        rollback pointer moves back to the release before it, so that a later C(restore) without O(release)
        undoes the last release that did happen.
    type: bool
    default: false
  retention:
    description: Releases kept by C(prune).
    type: int
    default: 5
  pip_args:
    description:
      - Extra arguments for pip when C(restore) reinstalls packages (index URL, certificate, ...).
      - Given to C(record_venv), they are kept with the record and used by its restore (e.g. C(--find-links)
        of the directory holding the builds that were installed).
    type: list
    elements: str
    default: []
"""

RETURN = r"""
release:
  description: The release acted on (C(null) when there was nothing to restore).
  type: str
restored:
  description: Items C(restore) changed, each C({path, component, action}).
  type: list
releases:
  description: For C(info) and C(restore), the releases on the host, newest first, each C({id, created, status, previous, items}).
  type: list
runs:
  description: For C(plan), the run ids the rollback undoes, newest first.
  type: list
plan:
  description: For C(plan), C({host: [release id, ...]}), newest first; only hosts with something to undo.
  type: dict
items:
  description: For C(plan), C({host: ["<release> <component> <path>", ...]}) of what the rollback restores.
  type: dict
"""

import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

RELEASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
STAMP_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$")
DIFF_LIMIT = 64 * 1024


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:32]


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(65536), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: str, data: bytes, mode: int) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Store:
    """The records under ``state_dir``."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.releases_dir = os.path.join(root, "releases")
        self.pointer = os.path.join(root, "current")

    def current(self) -> str | None:
        try:
            with open(self.pointer, encoding="utf-8") as handle:
                value = handle.read().strip()
        except FileNotFoundError:
            return None
        return value or None

    def path(self, release: str, *parts: str) -> str:
        return os.path.join(self.releases_dir, release, *parts)

    def load(self, release: str) -> dict | None:
        try:
            with open(self.path(release, "release.json"), encoding="utf-8") as handle:
                return json.load(handle)
        except FileNotFoundError:
            return None

    def save(self, record: dict) -> None:
        data = json.dumps(record, indent=2, sort_keys=True).encode() + b"\n"
        _atomic_write(self.path(record["id"], "release.json"), data, 0o600)

    def open(self, release: str) -> dict:
        """Return the release record, creating it (and moving the pointer) if needed."""
        record = self.load(release)
        if record is not None and record.get("status") not in ("rolled_back", "failed"):
            return record
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        os.chmod(self.root, 0o700)
        if record is not None:  # re-applied after a rollback or a failed run: start the record afresh
            shutil.rmtree(self.path(release))
        os.makedirs(self.path(release, "files"), mode=0o700)
        previous = self.current()
        record = {
            "id": release,
            "created": _now(),
            "previous": previous if previous != release else None,
            "status": "applied",
            "items": [],
        }
        self.save(record)
        _atomic_write(self.pointer, (release + "\n").encode(), 0o600)
        return record

    def all(self) -> list[dict]:
        if not os.path.isdir(self.releases_dir):
            return []
        records = [r for r in (self.load(name) for name in os.listdir(self.releases_dir)) if r]
        return sorted(records, key=lambda r: (r.get("created", ""), r["id"]), reverse=True)


def _stat_item(path: str) -> dict:
    import grp
    import pwd

    if not os.path.lexists(path):
        return {"existed": False}
    st = os.lstat(path)
    item = {"existed": True, "mode": "%04o" % (st.st_mode & 0o7777), "uid": st.st_uid, "gid": st.st_gid}
    try:
        item["owner"] = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        item["owner"] = None
    try:
        item["group"] = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        item["group"] = None
    if os.path.islink(path):
        item.update(type="link", target=os.readlink(path))
    elif os.path.isdir(path):
        item["type"] = "directory"
    else:
        item.update(type="file", sha256=_sha256(path))
    return item


def _pip(module: AnsibleModule, venv: str, *args: str) -> str:
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        module.fail_json(msg="rollout_state: %s is not a virtualenv (no bin/python)" % venv)
    cmd = [python, "-m", "pip", "--disable-pip-version-check", "--no-cache-dir", *args]
    owner = os.stat(venv).st_uid
    if os.geteuid() == 0 and owner != 0:  # keep the venv's files owned by its owner
        import pwd

        cmd = ["runuser", "-u", pwd.getpwuid(owner).pw_name, "--", *cmd]
    rc, out, err = module.run_command(cmd)
    if rc != 0:
        module.fail_json(msg="rollout_state: pip %s failed in %s: %s" % (args[0], venv, err.strip()[-2000:]))
    return out


def _freeze(module: AnsibleModule, venv: str) -> list[str]:
    lines = _pip(module, venv, "freeze", "--all").splitlines()
    return sorted(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _req_name(line: str) -> str:
    if line.startswith("-e "):
        match = re.search(r"#egg=([A-Za-z0-9._-]+)", line)
        name = match.group(1) if match else line
    else:
        name = re.split(r"\s*(?:==|===| @ )", line, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def record(module: AnsibleModule, store: Store, kind: str) -> None:
    release = module.params["release"]
    path = module.params["path"]
    if not release or not path:
        module.fail_json(msg="rollout_state: %s needs release and path" % kind)
    if not RELEASE_RE.match(release):
        module.fail_json(msg="rollout_state: release id %r is not of the form [A-Za-z0-9._:-]{1,64}" % release)
    existing = store.load(release)
    if existing and existing.get("status") not in ("rolled_back", "failed"):
        for item in existing["items"]:
            if item["path"] == path and item["kind"] == kind:
                module.exit_json(changed=False, release=release, item=item)
    if kind == "file":
        item = _stat_item(path)
        if item.get("type") not in (None, "file", "link"):
            module.fail_json(msg="rollout_state: %s is a %s; only files and links are recorded" % (path, item["type"]))
        if not item["existed"]:  # parents the role will create, removed again on restore when empty
            missing, parent = [], os.path.dirname(path)
            while parent and parent != "/" and not os.path.exists(parent):
                missing.append(parent)
                parent = os.path.dirname(parent)
            item["missing_parents"] = missing
    else:
        item = {"existed": True, "packages": _freeze(module, path), "pip_args": module.params["pip_args"]}
    item.update(
        kind=kind,
        path=path,
        component=module.params["component"],
        sensitive=module.params["sensitive"],
        key=_key(kind + ":" + path),
        recorded=_now(),
    )
    if module.check_mode:
        module.exit_json(changed=True, release=release, item=item)
    rec = store.open(release)
    if kind == "file" and item.get("type") == "file":
        backup = store.path(release, "files", item["key"])
        shutil.copyfile(path, backup)
        os.chmod(backup, 0o600)
    rec["items"].append(item)
    store.save(rec)
    module.exit_json(changed=True, release=release, item=item)


def _restore_file(module: AnsibleModule, store: Store, release: str, item: dict, diffs: list) -> str | None:
    path = item["path"]
    now = _stat_item(path)
    if not item["existed"]:
        if not now["existed"]:
            return None
        if not module.check_mode:
            os.unlink(path)
            for parent in item.get("missing_parents", []):
                if os.path.isdir(parent) and not os.listdir(parent):
                    os.rmdir(parent)
        diffs.append(
            {
                "before_header": path,
                "after_header": path + " (absent before the release)",
                "before": "" if item["sensitive"] else _read_text(path),
                "after": "",
            }
        )
        return "removed"
    action = None
    if item["type"] == "link":
        if now.get("type") != "link" or now.get("target") != item["target"]:
            action = "restored"
            if not module.check_mode:
                if os.path.lexists(path):
                    os.unlink(path)
                os.symlink(item["target"], path)
        return action
    backup = store.path(release, "files", item["key"])
    if not os.path.exists(backup):
        module.fail_json(msg="rollout_state: backup of %s missing from release %s (%s)" % (path, release, backup))
    if now.get("sha256") != item["sha256"]:
        action = "restored"
        diffs.append(
            {
                "before_header": path,
                "after_header": path + " (release %s backup)" % release,
                "before": "" if item["sensitive"] or not now["existed"] else _read_text(path),
                "after": "" if item["sensitive"] else _read_text(backup),
            }
        )
        if not module.check_mode:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(backup, "rb") as handle:
                _atomic_write(path, handle.read(), int(item["mode"], 8))
    # The rewritten file is new (owned by us): owner, group and mode always come from the record.
    if action or now.get("mode") != item["mode"] or now.get("uid") != item["uid"] or now.get("gid") != item["gid"]:
        action = action or "attributes"
        if not module.check_mode:
            os.chown(path, item["uid"], item["gid"])
            os.chmod(path, int(item["mode"], 8))
    return action


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(DIFF_LIMIT + 1)
    except OSError:
        return ""
    if len(data) > DIFF_LIMIT or b"\0" in data:
        return "(binary or large file, %d+ bytes)\n" % len(data)
    return data.decode("utf-8", "replace")


def _restore_venv(module: AnsibleModule, item: dict, diffs: list) -> str | None:
    venv = item["path"]
    wanted = {_req_name(line): line for line in item["packages"]}
    have = {_req_name(line): line for line in _freeze(module, venv)}
    install = [line for name, line in sorted(wanted.items()) if have.get(name) != line]
    remove = [name for name in sorted(have) if name not in wanted]
    if not install and not remove:
        return None
    diffs.append(
        {
            "before_header": venv + " (pip freeze)",
            "after_header": venv + " (recorded package set)",
            "before": "\n".join(sorted(have.values())) + "\n",
            "after": "\n".join(item["packages"]) + "\n",
        }
    )
    if not module.check_mode:
        if remove:
            _pip(module, venv, "uninstall", "-y", *remove)
        if install:
            editable = [x for line in install if line.startswith("-e ") for x in ("-e", line[3:])]
            plain = [line for line in install if not line.startswith("-e ")]
            _pip(
                module,
                venv,
                "install",
                "--no-deps",
                *item.get("pip_args", []),
                *module.params["pip_args"],
                *plain,
                *editable,
            )
    return "reconciled"


def _release_time(release: str) -> str | None:
    """``20261129T091758Z`` (the default id: the run's UTC start) as ``2026-11-29T09:17:58Z``, else None."""
    match = STAMP_RE.match(release)
    if not match:
        return None
    y, mo, d, h, mi, sec = match.groups()
    return "%s-%s-%sT%s:%s:%sZ" % (y, mo, d, h, mi, sec)


def restore(module: AnsibleModule, store: Store) -> None:
    target = module.params["release"]
    current = store.current()
    records = store.all()
    releases = {r["id"]: r for r in records}
    lineage: list[dict] = []  # the current release and its ancestors, newest first
    seen: set[str] = set()
    cursor = current
    while cursor and cursor in releases and cursor not in seen:
        seen.add(cursor)
        lineage.append(releases[cursor])
        cursor = releases[cursor].get("previous")
    wanted = module.params["releases"]
    if wanted is not None:  # the controller's plan: exactly these runs, in this host's order (newest first)
        listed = lineage + [r for r in records if r not in lineage]
        chain = [r for r in listed if r["id"] in wanted]
        target = target or (wanted[-1] if wanted else None)
    elif not target:
        chain = lineage[:1]
    elif target == "all":  # every release still on the host: back to before the oldest one kept
        chain = lineage
    elif target in releases:
        ids = [r["id"] for r in lineage]
        if target not in ids:
            module.fail_json(
                msg="rollout_state: release %r is not an ancestor of the current release %r" % (target, current)
            )
        chain = lineage[: ids.index(target) + 1]
    elif _release_time(target):
        # A run that changed nothing here left no record: undo what this host recorded since that run began.
        since = _release_time(target)
        chain = [r for r in lineage if (_release_time(r["id"]) or r.get("created", "")) >= since]
    elif module.params["missing_ok"]:
        module.exit_json(
            changed=False,
            release=target,
            restored=[],
            releases=[],
            msg="nothing to restore: release %s was not recorded on this host" % target,
        )
    else:
        module.fail_json(
            msg="rollout_state: no release %r on this host (have: %s)" % (target, ", ".join(sorted(releases)) or "none")
        )
    todo = [r for r in chain if r.get("status") not in ("rolled_back", "failed")]
    summary = [{k: r.get(k) for k in ("id", "created", "status", "previous")} for r in records]
    if not todo and wanted is not None:
        module.exit_json(changed=False, release=target, restored=[], releases=[], msg="nothing to restore on this host")
    if not todo:
        module.exit_json(
            changed=False,
            release=target or current,
            restored=[],
            releases=summary,
            msg="nothing to restore: %s"
            % (
                "no release recorded"
                if not current
                else "release %s changed nothing on this host" % target
                if target and target != "all" and target not in releases
                else "release %s is already rolled back" % (target if target in releases else current)
            ),
        )
    restored: list[dict] = []
    diffs: list[dict] = []
    for rec in todo:
        for item in reversed(rec["items"]):
            if item["kind"] == "file":
                action = _restore_file(module, store, rec["id"], item, diffs)
            else:
                action = _restore_venv(module, item, diffs)
            if action:
                restored.append(
                    {"path": item["path"], "component": item["component"], "action": action, "release": rec["id"]}
                )
        if not module.check_mode:
            rec["status"] = "failed" if module.params["discard"] else "rolled_back"
            rec["rolled_back"] = _now()
            store.save(rec)
    if module.params["discard"] and not module.check_mode:
        # An automatic restore of a failed run: that release never happened, so the pointer goes back to the
        # release before it and the next rollback undoes the last release that did happen.
        for rec in todo:
            if store.current() == rec["id"]:
                previous = rec.get("previous")
                if previous:
                    _atomic_write(store.pointer, (previous + "\n").encode(), 0o600)
                else:
                    os.unlink(store.pointer)
    module.exit_json(
        changed=True,
        release=target or current,
        restored=restored,
        diff=diffs,
        releases=summary,
        msg="restored %d item(s) from %s" % (len(restored), ", ".join(r["id"] for r in todo)),
    )


ACTIVE = ("applied",)


class PlanError(ValueError):
    """A rollback target that no host recorded (the message names the variable)."""


def make_plan(hosts: dict[str, list[dict]], target: str | None, name: str = "release") -> dict:
    """Decide once, for every host, which runs a rollback undoes.

    ``hosts`` maps a host to its ``info`` releases (``{id, created, status, items}``). Runs are ordered by the
    earliest ``created`` any host recorded for them (runs do not overlap). ``target``: empty = the newest run
    still applied on some host; ``all`` = every applied run; an id = that run and every newer one. Returns
    ``{runs, plan, items, msg}``: ``runs`` newest first, ``plan`` ``{host: [id, ...]}`` (only hosts with an
    applied record of a planned run), ``items`` ``{host: ["<id> <component> <path>", ...]}``. Raises
    PlanError when ``target`` is neither empty, ``all``, a recorded id nor a ``YYYYmmddTHHMMSSZ`` time.
    """
    first_seen: dict[str, str] = {}
    applied: set[str] = set()
    for releases in hosts.values():
        for rel in releases or []:
            created = rel.get("created") or ""
            if rel["id"] not in first_seen or created < first_seen[rel["id"]]:
                first_seen[rel["id"]] = created
            if rel.get("status") in ACTIVE:
                applied.add(rel["id"])
    order = sorted(first_seen, key=lambda rid: (first_seen[rid], rid), reverse=True)
    if target and target != "all" and not RELEASE_RE.match(target):
        raise PlanError("%s=%s is not a release id (letters, digits and ._:- , e.g. 20261129T163450Z)" % (name, target))
    if not target:
        newest = [rid for rid in order if rid in applied][:1]
        runs = newest
    elif target == "all":
        runs = [rid for rid in order if rid in applied]
    elif target in first_seen:
        runs = [rid for rid in order[: order.index(target) + 1] if rid in applied]
    else:
        # Also for an id shaped like a time: a one-digit typo must not undo a month of runs. A run that
        # changed nothing anywhere left no record to name; the message lists the ids that can be named.
        raise PlanError(
            "%s=%s is not a release recorded on any host; recorded (newest first): %s"
            % (name, target, ", ".join(order) or "none")
        )
    plan: dict[str, list[str]] = {}
    items: dict[str, list[str]] = {}
    for host in sorted(hosts):
        mine = {r["id"]: r for r in hosts[host] or [] if r["id"] in runs and r.get("status") in ACTIVE}
        if not mine:
            continue
        ids = [rid for rid in runs if rid in mine]
        plan[host] = ids
        items[host] = [
            "%s %s %s" % (rid, item.get("component", "unknown"), item.get("path"))
            for rid in ids
            for item in reversed(mine[rid].get("items") or [])
        ]
    if not runs:
        msg = "nothing to roll back: no run is still applied on any host" + (
            " from %s on" % target if target and target != "all" else ""
        )
    else:
        msg = "rolling back %s on %s (other hosts left alone)" % (", ".join(runs), ", ".join(sorted(plan)))
    return {"runs": runs, "plan": plan, "items": items, "msg": msg}


def plan_action(module: AnsibleModule) -> None:
    try:
        result = make_plan(module.params["hosts"] or {}, module.params["release"], module.params["release_name"])
    except PlanError as err:
        module.fail_json(msg=str(err))
    module.exit_json(changed=False, **result)


def prune(module: AnsibleModule, store: Store) -> None:
    keep = module.params["retention"]
    if keep < 1:
        module.fail_json(msg="rollout_state: retention must be >= 1, got %d" % keep)
    current = store.current()
    releases = store.all()
    drop = [r["id"] for r in releases[keep:] if r["id"] != current]
    if drop and not module.check_mode:
        for release in drop:
            shutil.rmtree(store.path(release))
    module.exit_json(changed=bool(drop), pruned=drop)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(
                type="str", required=True, choices=["record_file", "record_venv", "restore", "prune", "info", "plan"]
            ),
            state_dir=dict(type="path", default="/var/lib/rozitech-rollout"),
            release=dict(type="str"),
            path=dict(type="path"),
            component=dict(type="str", default="unknown"),
            sensitive=dict(type="bool", default=False),
            retention=dict(type="int", default=5),
            missing_ok=dict(type="bool", default=False),
            discard=dict(type="bool", default=False),
            pip_args=dict(type="list", elements="str", default=[]),
            releases=dict(type="list", elements="str"),
            hosts=dict(type="dict"),
            release_name=dict(type="str", default="release"),
        ),
        supports_check_mode=True,
    )
    store = Store(module.params["state_dir"])
    action = module.params["action"]
    if action == "record_file":
        record(module, store, "file")
    elif action == "record_venv":
        record(module, store, "venv")
    elif action == "restore":
        restore(module, store)
    elif action == "prune":
        prune(module, store)
    elif action == "plan":
        plan_action(module)
    else:
        releases = store.all()
        module.exit_json(
            changed=False,
            current=store.current(),
            releases=[
                {k: r.get(k) for k in ("id", "created", "status", "previous")}
                | {"items": [{k: item.get(k) for k in ("kind", "path", "component")} for item in r["items"]]}
                for r in releases
            ],
        )


if __name__ == "__main__":
    main()

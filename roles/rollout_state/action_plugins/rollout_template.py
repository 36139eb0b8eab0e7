# Copyright: rozitech-auth-rollout contributors. GNU General Public License v3.0+.
"""Action plugins ``rollout_template``, ``rollout_copy``, ``rollout_lineinfile``, ``rollout_file``: record, then change.

Each takes the arguments of the module it wraps (``ansible.builtin.template``, ``copy``, ``lineinfile``,
``file``) plus:

``rollout_component``
    label of the record (default: the name of the role the task belongs to);
``rollout_sensitive``
    the record never returns the file's content in a diff (secrets; default false);
``rollout_parent``
    ``{owner, group, mode}`` of the file's directory, created after the record and before the change (so that
    a directory the release creates is recorded as missing, and removed again by a restore when empty);
``rollout_release`` / ``rollout_state_dir``
    default to the variables ``rollout_state_release`` (set by the rollout_state role for the run) and
    ``rollout_state_dir``.

One task does the three steps a role used to write as three tasks:

1. run the wrapped module in check mode (no diff): would it change the file (``dest`` or ``path``)?
   A check that fails (e.g. a link whose target a check run cannot see) counts as "would change";
2. when it would, record the file's state before the change with the ``rollout_state`` module
   (``action: record_file``, once per release: the first record is the state before the release);
3. when it would, run the wrapped module for real, with the task's diff, no_log, notify and register as usual
   (when it would not, the check's result is the task's: a rerun that changes nothing runs each module once).

Under ``--check`` only step 3 runs, in check mode: the task shows what would change (and its diff) and
records nothing. The result is the wrapped module's, plus ``rollout_recorded`` (true when step 2 ran).
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

ROLLOUT_OPTIONS = ("rollout_component", "rollout_sensitive", "rollout_parent", "rollout_release", "rollout_state_dir")


class ActionModule(ActionBase):
    """Record the wrapped module's file in the rollout state, then apply the module."""

    WRAPPED = "ansible.builtin.template"
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def _setting(self, args: dict, option: str, variable: str, task_vars: dict):
        value = args.get(option)
        if value is None and variable in task_vars:
            value = self._templar.template(task_vars[variable])
        if value in (None, ""):
            raise AnsibleActionFail(
                f"{self._task.action}: {variable} is not set (the role must depend on rollout_state, "
                f"whose main entry point sets it for the run) and no {option} was given"
            )
        return value

    def _run_wrapped(self, args: dict, task_vars: dict, check_mode: bool, diff: bool) -> dict:
        task = self._task.copy()
        task.args = args
        task.check_mode = check_mode
        task.diff = diff
        loader = self._shared_loader_obj.action_loader
        handler = self.WRAPPED
        if not loader.has_plugin(handler, collection_list=task.collections):
            handler = "ansible.legacy.normal"  # a module without an action plugin of its own (lineinfile, file)
            task.action = self.WRAPPED
        action = loader.get(
            handler,
            task=task,
            connection=self._connection,
            play_context=self._play_context,
            loader=self._loader,
            templar=self._templar,
            shared_loader_obj=self._shared_loader_obj,
        )
        return action.run(task_vars=task_vars)

    def _record(self, path: str, task_vars: dict) -> str | None:
        """Record ``path`` before the change (rollout_state record_file); an error message, or None."""
        role = self._task._role.get_name(include_role_fqcn=False) if self._task._role else "unknown"
        record = self._execute_module(
            module_name="rollout_state",
            module_args={
                "action": "record_file",
                "state_dir": self._setting(self._task.args, "rollout_state_dir", "rollout_state_dir", task_vars),
                "release": self._setting(self._task.args, "rollout_release", "rollout_state_release", task_vars),
                "path": path,
                "component": self._task.args.get("rollout_component") or role,
                "sensitive": boolean(self._task.args.get("rollout_sensitive", False), strict=True),
            },
            task_vars=task_vars,
        )
        if record.get("failed"):
            return f"could not record {path} before changing it: {record.get('msg')}"
        return None

    def _make_parent(self, path: str, task_vars: dict) -> str | None:
        """Create the file's directory after the record (rollout_parent); an error message, or None."""
        parent = self._task.args.get("rollout_parent")
        if not parent:
            return None
        made = self._execute_module(
            module_name="ansible.legacy.file",
            module_args=dict(parent, path=os.path.dirname(path), state="directory"),
            task_vars=task_vars,
        )
        if made.get("failed"):
            return f"could not create {os.path.dirname(path)}: {made.get('msg')}"
        return None

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = {k: v for k, v in self._task.args.items() if k not in ROLLOUT_OPTIONS}
        path = args.get("dest") or args.get("path")
        if not path:
            raise AnsibleActionFail(f"{self._task.action}: dest (or path) is required")

        if self._task.check_mode:
            result.update(self._run_wrapped(args, task_vars, check_mode=True, diff=self._task.diff))
            result["rollout_recorded"] = False
            return result

        try:
            would = self._run_wrapped(args, task_vars, check_mode=True, diff=False)
            if not would.get("changed") and not would.get("failed"):
                # Nothing to change: the real run would only repeat the check (half the module runs of a rerun).
                result.update(would)
                result["rollout_recorded"] = False
                return result
            failure = self._record(path, task_vars) or self._make_parent(path, task_vars)
            if failure:
                result.update(failed=True, msg=failure)
                return result
            result.update(self._run_wrapped(args, task_vars, check_mode=False, diff=self._task.diff))
            result["rollout_recorded"] = True
            return result
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

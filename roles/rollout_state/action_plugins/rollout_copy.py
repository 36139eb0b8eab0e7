# Copyright: rozitech-auth-rollout contributors. GNU General Public License v3.0+.
"""Action plugin ``rollout_copy``: ``ansible.builtin.copy``, recording the file first (see rollout_template.py)."""

from __future__ import annotations

from ansible.plugins.loader import action_loader

_RolloutAction = action_loader.get("rollout_template", class_only=True)


class ActionModule(_RolloutAction):
    """Record ``dest``/``path`` in the rollout state, then apply ``ansible.builtin.copy``."""

    WRAPPED = "ansible.builtin.copy"

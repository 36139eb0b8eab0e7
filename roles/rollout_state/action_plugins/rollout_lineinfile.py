# Copyright: rozitech-auth-rollout contributors. GNU General Public License v3.0+.
"""Action plugin ``rollout_lineinfile``: ``ansible.builtin.lineinfile``, recording the file first.

See rollout_template.py.
"""

from __future__ import annotations

from ansible.plugins.loader import action_loader

_RolloutAction = action_loader.get("rollout_template", class_only=True)


class ActionModule(_RolloutAction):
    """Record ``dest``/``path`` in the rollout state, then apply ``ansible.builtin.lineinfile``."""

    WRAPPED = "ansible.builtin.lineinfile"

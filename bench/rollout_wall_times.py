"""Wall time of the rollout on the sandbox: a full rollout on fresh hosts, a second (no-change) run, a rollback.

Prints one table (seconds; the PLAY RECAP's changed counts prove what each run did). Needs the sandbox
images (``make images``); it rebuilds the sandbox itself (``make demo-down demo-up``) so the first run
meets fresh hosts, and leaves it rolled back. Loopback and the sandbox's own containers only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


def run(*cmd: str) -> tuple[float, str]:
    env = dict(
        os.environ,
        PATH=f"{BIN}:{os.environ['PATH']}",
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    start = time.monotonic()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed (rc={out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-2000:]}")
    return elapsed, out.stdout


def changed(stdout: str) -> str:
    hosts = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", stdout, re.M)
    return ", ".join(f"{h} {c}" for h, c in hosts)


def main() -> int:
    run("make", "demo-down")
    prep, _ = run("make", "demo-up")
    rows = [("sandbox up + target app fixture (harness, not the product)", prep, "")]
    for label, playbook in (
        ("full rollout on fresh hosts (site.yml)", "playbooks/site.yml"),
        ("second run, no change (site.yml)", "playbooks/site.yml"),
        ("one-command rollback (rollback.yml)", "playbooks/rollback.yml"),
    ):
        seconds, stdout = run("ansible-playbook", "-i", "inventory/sandbox", playbook)
        rows.append((label, seconds, changed(stdout)))
    print(f"{'run':<60} {'seconds':>8}  changed per host")
    for label, seconds, detail in rows:
        print(f"{label:<60} {seconds:>8.1f}  {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

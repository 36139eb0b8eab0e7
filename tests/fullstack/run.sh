#!/usr/bin/env bash
# The full-stack scenario (issue 8, and issue 7's rollback over the whole topology): `make fullstack`.
#
#   fresh sandbox (two app hosts + shared Redis, auth proxy, auth server stand-in, monitoring on this machine)
#   -> capture every host -> playbooks/site.yml (under steady load: 0 failed requests on app1)
#   -> the fault matrix (tests/fullstack/test_fault_matrix.py)
#   -> every Grafana panel query against the sandbox's Prometheus
#   -> an app-only change (playbooks/remote_auth.yml) and the plain rollback, both under load: every host, the
#      proxy and monitoring included, as captured before that change (issue 17)
#   -> playbooks/rollback.yml -e rollout_release=all
#   (under steady load: 0 failed requests on app1) -> capture again -> compare (byte for byte) -> sandbox down.
#
# KEEP_SANDBOX=1 leaves the containers up at the end (default: removed, also on failure).
# Output: .artifacts/fullstack/ (captures, the matrix's JUnit XML).
set -euo pipefail
cd "$(dirname "$0")/../.."
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
art="$PWD/.artifacts/fullstack"
inv=(-i inventory/sandbox)
step() { printf '\n\033[1m[fullstack %s] %s\033[0m\n' "$(date -u +%H:%M:%S)" "$*"; }
down() { ansible-playbook "${inv[@]}" tests/sandbox/down.yml >/dev/null; }
if [ "${KEEP_SANDBOX:-0}" != 1 ]; then trap 'step "removing the sandbox"; down' EXIT; fi

rm -rf "$art" && mkdir -p "$art"
step "fresh sandbox"
down
ansible-playbook "${inv[@]}" tests/sandbox/up.yml
ansible-playbook "${inv[@]}" tests/sandbox/fixture_app.yml
step "capture before the rollout"
ansible-playbook "${inv[@]}" tests/fullstack/capture.yml -e capture_name=before -e "capture_dir=$art"
# bench/rollout_load.py watch: clients load app1 through its nginx while the command runs; exit 1 when a
# request fails (a 502 while gunicorn restarts) or the command fails (its output: here and in $art/<label>.log).
load() { python bench/rollout_load.py --log-dir "$art" --max-failed 0 watch --label "$1" -- "${@:2}"; }
step "the rollout (playbooks/site.yml) under load: no request may fail"
load site ansible-playbook "${inv[@]}" playbooks/site.yml
step "the fault matrix"
python -m pytest tests/fullstack -p no:cacheprovider -v -s --junitxml="$art/fault-matrix.xml"
step "where the alerts went (Alertmanager's routes, what the alert sink received)"
python tests/monitoring/alert_routes.py --prometheus http://127.0.0.1:9090 --alertmanager http://127.0.0.1:9093 \
  --sink http://127.0.0.1:9095
step "every dashboard query returns data (after the matrix, every panel has something to show)"
python tests/monitoring/check_dashboard_queries.py --prometheus http://127.0.0.1:9090 --wait 120
step "an app-only change, then the plain rollback under load: only that change is undone (issue 17)"
ansible-playbook "${inv[@]}" tests/fullstack/capture.yml -e capture_name=converged -e "capture_dir=$art"
load app-change ansible-playbook "${inv[@]}" playbooks/remote_auth.yml -e remote_auth_cache_ttl=301
load plain-rollback ansible-playbook "${inv[@]}" playbooks/rollback.yml
ansible-playbook "${inv[@]}" tests/fullstack/capture.yml -e capture_name=plain-rolled-back -e "capture_dir=$art"
ansible-playbook "${inv[@]}" tests/fullstack/compare.yml -e "capture_dir=$art" \
  -e compare_before=converged -e compare_after=plain-rolled-back
step "one-command rollback of every release (playbooks/rollback.yml -e rollout_release=all) under load: no request may fail"
load rollback ansible-playbook "${inv[@]}" playbooks/rollback.yml -e rollout_release=all
step "capture after the rollback, compare"
ansible-playbook "${inv[@]}" tests/fullstack/capture.yml -e capture_name=rolled-back -e "capture_dir=$art"
ansible-playbook "${inv[@]}" tests/fullstack/compare.yml -e "capture_dir=$art"
step "passed"

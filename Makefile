# rozitech-auth-rollout: `make demo` (sandbox + rollout + proof), `make test` (lint + unit + Molecule), `make test-full` (everything CI runs: .ci/run).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= 1
# Modules go over the connection's stdin instead of a temporary file each (also for the docker connection,
# which [ssh_connection] pipelining does not reach): fewer docker exec calls per task.
export ANSIBLE_PIPELINING ?= True
STANDIN := tests/standins/auth_server
SANDBOX := -i inventory/sandbox

.PHONY: help venv images standin-deps sslyze-venv monitoring-check docs demo demo-up demo-rollback demo-down lint unit molecule test fullstack test-full bench bench-rollout bench-fullstack bench-restarts clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

venv: $(VENV)/.installed ## Create the project venv (pinned tools, Python 3.11)

SSLYZE_VENV := .cache/sslyze-venv
$(SSLYZE_VENV)/.installed: tests/tls/requirements-sslyze.txt
	@test -x $(SSLYZE_VENV)/bin/python || $(PY) -m venv $(SSLYZE_VENV)
	$(SSLYZE_VENV)/bin/python -m pip install -q --disable-pip-version-check -r tests/tls/requirements-sslyze.txt
	@touch $@

sslyze-venv: $(SSLYZE_VENV)/.installed ## sslyze in its own venv (it pins an older cryptography)

images: ## Build the local systemd images (cached: seconds when present)
	bash tests/sandbox/images/build.sh

$(STANDIN)/node_modules/.package-lock.json: $(STANDIN)/package-lock.json
	cd $(STANDIN) && npm ci --no-audit --no-fund --loglevel=error

standin-deps: $(STANDIN)/node_modules/.package-lock.json ## npm ci for the auth server stand-in (its own tests)

demo-up: venv images ## Start the sandbox containers and install the target app fixture
	ansible-playbook $(SANDBOX) tests/sandbox/up.yml
	ansible-playbook $(SANDBOX) tests/sandbox/fixture_app.yml

demo: demo-up ## Sandbox + the whole rollout (playbooks/site.yml) + printed proof
	ansible-playbook $(SANDBOX) playbooks/site.yml
	$(BIN)/python tests/sandbox/proof.py
	$(BIN)/python tests/monitoring/alert_states.py --prometheus http://127.0.0.1:9090
	$(BIN)/python tests/monitoring/alert_routes.py --prometheus http://127.0.0.1:9090 --alertmanager http://127.0.0.1:9093 --sink http://127.0.0.1:9095

monitoring-check: venv ## Every dashboard query against the sandbox's Prometheus (after make demo)
	$(BIN)/python tests/monitoring/check_dashboard_queries.py --prometheus http://127.0.0.1:9090 --wait 120

demo-rollback: venv ## One-command rollback on the sandbox, then the proof that it happened
	ansible-playbook $(SANDBOX) playbooks/rollback.yml
	$(BIN)/python tests/sandbox/proof.py --expect-rolled-back

demo-down: venv ## Remove the sandbox containers and network
	ansible-playbook $(SANDBOX) tests/sandbox/down.yml

docs: venv ## Regenerate the variable tables, remote_auth's .env defaults and the patch's settings table (tools/role_docs.py)
	$(BIN)/python tools/role_docs.py

lint: venv ## ansible-lint (production profile), yamllint, ruff, generated docs up to date
	$(BIN)/python tools/role_docs.py --check
	yamllint -s .
	ansible-lint --profile production
	ruff check .
	ruff format --check .

unit: venv standin-deps ## Python unit tests (django_patch, stand-in, rollout_state module)
	cd django_patch && $(BIN)/python -m pytest -q
	cd monitoring/exporter && $(BIN)/python -m pytest -q
	$(BIN)/python -m pytest -q tests/unit tests/standins tests/fixtures tests/tls tests/monitoring

molecule: venv images sslyze-venv ## Molecule scenarios: every role's, then rollback and soak
	cd roles/remote_auth && molecule test -s default
	cd roles/redis_cache && molecule test -s default
	cd roles/auth_proxy && molecule test -s default
	cd roles/auth_proxy && molecule test -s tls
	cd roles/auth_exporter && molecule test -s default
	cd roles/monitoring_stack && molecule test -s default
	cd tests && molecule test -s rollback
	cd tests && molecule test -s soak

test: lint unit molecule ## Lint + unit tests + every Molecule scenario (most of make test-full)

fullstack: venv images ## Whole sandbox: site.yml, the fault matrix, rollback of everything, byte-identity
	bash tests/fullstack/run.sh

test-full: test fullstack ## The whole suite: `make test` + the full-stack fault matrix (what CI runs: .ci/run)

bench: venv standin-deps ## Benchmarks of the remote-auth patch: prints a table (~1.5 min, loopback only)
	$(BIN)/python bench/remote_auth_bench.py

bench-rollout: venv images ## Wall time of site.yml (fresh, no-change) and rollback.yml on a new sandbox (~5 min)
	$(BIN)/python bench/rollout_wall_times.py

bench-fullstack: venv ## Figures on the running sandbox (after make demo): throughput, auth calls, fail fast (~13 min)
	$(BIN)/python bench/fullstack_bench.py

bench-restarts: venv ## Failed requests under load while app1 is rolled out, restored, rolled back (after make demo, ~6 min)
	$(BIN)/python bench/rollout_load.py

clean: ## Remove the venv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache

# shared-services-operator: `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV_VERSION ?= 0.13.9
PYTHON := .venv/bin/python
STATE := .local
PYTEST_ARGS ?=
# What the clusters and the workload cluster's data plane (kube-proxy, CoreDNS, the servers on
# the load-balancer network) need, built or installed when missing.
DATAPLANE := controlplane coredns packages

export PYTHONPATH := $(CURDIR)/tests:$(CURDIR)/operator

.PHONY: help install controlplane coredns packages lint format typecheck unit check test test-releases crds up down run demo bench clean

help: ## List the targets with what each does
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[1m%-22s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Install uv if missing, then the locked Python dependencies into .venv
	@command -v uv >/dev/null && [[ "$$(uv --version)" == "uv $(UV_VERSION)"* ]] || \
		python3 -m pip install --quiet "uv==$(UV_VERSION)"
	@# Compiled as the image compiles them: an operator the tests or the benchmark start
	@# would otherwise compile kopf, the kubernetes client and itself each time (over half
	@# of its 1 s import), where PYTHONDONTWRITEBYTECODE keeps Python from caching them.
	@uv sync --frozen --quiet --compile-bytecode
	@$(PYTHON) -m compileall -q operator/shared_services

controlplane: ## Build the control plane of every supported Kubernetes release (cached)
	@bash tests/controlplane/build.sh >/dev/null
	@for release in $(OLDER_RELEASES); do bash tests/controlplane/build.sh $$release >/dev/null; done

coredns: ## Build CoreDNS and its kubernetes plugin from its Go module (cached)
	@bash tests/tools/coredns/build.sh >/dev/null

packages: ## Install the data plane's Debian packages if missing: nftables, Redis, PostgreSQL
	@bash tests/tools/debian/install.sh

lint: install ## Check formatting, lint with ruff, and check the layering contracts
	uv run --frozen ruff format --check operator tests
	uv run --frozen ruff check operator tests
	uv run --frozen lint-imports --no-cache

format: install ## Format and autofix with ruff
	uv run --frozen ruff format operator tests
	uv run --frozen ruff check --fix operator tests

typecheck: install ## Type-check the operator, the test harness and the benchmark with mypy --strict
	uv run --frozen mypy operator/shared_services tests/harness tests/bench tests/support.py tests/suite.py

unit: install ## Run the unit tests: seconds, with no cluster, no build and no root
	uv run --frozen pytest tests/unit $(PYTEST_ARGS)

check: lint typecheck unit ## Lint, type-check and run the unit tests: the quick check before a commit

# The supported Kubernetes releases older than the newest (tests/controlplane/release-*).
OLDER_RELEASES = $(shell bash tests/controlplane/build.sh --list | tail -n +2)

test: install helm promtool $(DATAPLANE) ## Run the whole suite on the newest Kubernetes, then the `releases` tests on the older ones
	uv run --frozen pytest $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-releases

test-releases: install helm controlplane ## Run the tests marked `releases` with the workload cluster on each older release
	@for release in $(OLDER_RELEASES); do \
		echo "== the tests marked releases, with the workload cluster on Kubernetes $$release"; \
		SSO_K8S_RELEASE=$$release uv run --frozen pytest -m releases $(PYTEST_ARGS) || exit 1; \
	done

crds: install helm ## Regenerate crds/ (and crds/1.30/) from the models, the chart's copies and deploy/manifests/
	uv run --frozen python -m shared_services.crdgen --out crds
	uv run --frozen python -m shared_services.crdgen --out $(CHART)/files/crds
	bash deploy/render-manifests.sh "$$(bash $(HELM_BUILD))" deploy/manifests

up: install $(DATAPLANE) ## Start both clusters and the workload's data plane in the background
	$(PYTHON) -m harness up --state $(STATE)

down: ## Stop the clusters that `make up` started and remove their state
	@[[ -x $(PYTHON) ]] && $(PYTHON) -m harness down --state $(STATE) || rm -rf $(STATE)/clusters

run: install ## Run the operator in the foreground against the cluster of your KUBECONFIG
	uv run --frozen shared-services-operator

demo: install $(DATAPLANE) ## Show the operator keeping a local Service on a remote VIP, with a client
	$(PYTHON) -m demo

bench: install $(DATAPLANE) ## Measure latency, recovery, scale and burst; writes bench/REPORT.md
	$(PYTHON) -m bench --out bench $(BENCH_ARGS)

clean: down ## Remove the virtualenv and caches inside the repository
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache

# -- shipping: image, chart, plain manifests, central-cluster access ------------------------

CHART := deploy/helm/shared-services-operator
HELM_BUILD := tests/tools/helm/build.sh
SUPERVISOR_KUBECONFIG ?= $(KUBECONFIG)
OPERATOR_NAMESPACE ?= shared-services-system

PROMTOOL_BUILD := tests/tools/promtool/build.sh

.PHONY: helm promtool chart-lint manifests release image-check supervisor-kubeconfig

helm: ## Build helm from its Go module (cached), for the chart's tests and `make manifests`
	@bash $(HELM_BUILD) >/dev/null

promtool: ## Build promtool from the Prometheus Go module (cached), for the chart's alert tests
	@bash $(PROMTOOL_BUILD) >/dev/null
	@bash $(PROMTOOL_BUILD) selectors >/dev/null

chart-lint: helm ## Lint the Helm chart strictly, against its values.schema.json
	"$$(bash $(HELM_BUILD))" lint --strict $(CHART)

manifests: helm ## Render deploy/manifests/ (plain YAML, kustomize-ready) from the Helm chart
	bash deploy/render-manifests.sh "$$(bash $(HELM_BUILD))" deploy/manifests

# Where `make release` packages; a test packages into a directory of its own with DIST=.
DIST ?= dist

# It checks VERSION and sets nothing: the release is the commit whose files already say
# the version (a unit test holds them together), so what is packaged is what was tested.
release: helm ## Package VERSION's chart and plain manifests into dist/ and print how to publish them
	@bash deploy/release.sh "$(VERSION)" "$$(bash $(HELM_BUILD))" "$(abspath $(DIST))"

image-check: install ## Lint the Dockerfile with hadolint
	.venv/bin/hadolint Dockerfile

supervisor-kubeconfig: install ## Print the Secret for RemoteClusters, from deploy/supervisor/'s identity
	@$(PYTHON) -m shared_services.kubeconfig_cli --kubeconfig "$(SUPERVISOR_KUBECONFIG)" \
		--secret-namespace $(OPERATOR_NAMESPACE)

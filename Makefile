# The two commands a newcomer needs: `make demo` runs the main job on the example consortium,
# `make test` runs every test (unit and real-engine integration). Both install what they need first.

# What `make demo` installs (scripts/bootstrap components): the Python package, a Docker engine, CometBFT
# and its node image; no Kubernetes, Chromium or OPA. The demo's gate and audit need no OPA binary (the
# built-in packs evaluate in-process): add `opa` here if the default engine ever needs it. `make test`
# installs everything.
DEMO_COMPONENTS ?= python docker cometbft image
SHELL := /bin/bash
PYTHON ?= python3
EXAMPLE ?= examples/regional-health-net/network.yaml
ENV ?= dev
OUT ?= out/regional-health-net
export HCOPS_CACHE ?= $(HOME)/.cache/hcops
export PATH := $(HCOPS_CACHE)/bin:$(PATH)

.PHONY: bootstrap bootstrap-demo demo down test lint unit integration bench clean

bootstrap:
	scripts/bootstrap

bootstrap-demo:
	scripts/bootstrap $(DEMO_COMPONENTS)

demo: bootstrap-demo
	hcops validate -f $(EXAMPLE) --env $(ENV)
	hcops render -f $(EXAMPLE) --env $(ENV) -o $(OUT) --generate-keys
	hcops check -f $(EXAMPLE) --env $(ENV)
	hcops apply -f $(EXAMPLE) --env $(ENV) --yes
	hcops status -f $(EXAMPLE) --env $(ENV)
	hcops audit -f $(EXAMPLE) --env $(ENV)
	hcops report -f $(EXAMPLE) --env $(ENV) --format html -o out/report.html
	@echo "report: out/report.html; stop the network with: make down"

down:
	hcops destroy -f $(EXAMPLE) --env $(ENV)

lint:
	ruff check hcops tests bench
	mypy hcops
	opa fmt --list --fail policies
	opa check --strict policies

unit:
	$(PYTHON) -m pytest -m "not integration" -q

integration:
	$(PYTHON) -m pytest -m integration -v

# HCOPS_K8S_NODE=1: include the tests that run validators as pods on a real single-node Kubernetes.
test: bootstrap lint
	HCOPS_K8S_NODE=1 $(PYTHON) -m pytest -v --durations=15

bench: bootstrap
	for b in bench/*.py; do $(PYTHON) $$b || exit 1; done

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache

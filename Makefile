# Two commands on a fresh machine:  make demo   (main job)   and   make test.
# make demo leaves the local deployment running for make test's integration tests; make destroy-local ends it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
PIPENV_VERSION := 2024.4.1
SUFFIX ?= $(or $(ENVIRONMENT_SUFFIX),dev)
# The stacks, from the one workload list (stacks/workloads.py, standard library only).
STACKS := $(shell $(PYTHON) -m stacks list --suffix $(SUFFIX))

export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_NOSPIN := 1
export PIPENV_VERBOSITY := -1
# jsii warns on every run that Node 20 is end-of-life; silenced for that major only.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CHECKPOINT_DISABLE := 1
export TF_IN_AUTOMATION := 1

PIPENV := $(PYTHON) -m pipenv
RUN := $(PIPENV) run
TF_ENV = TF_CLI_CONFIG_FILE="$$($(RUN) python -m stacks.terraform_cli 2>/dev/null)"


.PHONY: servers help setup demo destroy-local local-status synth summary test test-unit lint plan plan-review policy checkov validate cost bench-synth bench-processor bench-scale bench-ingest-iot bench-catalog bench-http-floor eval-anomaly eval-anomaly-real eval-anomaly-calibration \
        outputs deploy rotate-redis-auth destroy push-image migrate clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.venv/.synced: Pipfile.lock
	@$(PYTHON) -m pipenv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "pipenv==$(PIPENV_VERSION)"
	$(PIPENV) sync --dev
	@touch $@

node_modules/.synced: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.gen/.provider-warm: .venv/.synced
	$(RUN) python -m tools.warm_provider
	@touch $@

# mypyc's build of the anomaly detector (processor/anomaly/build.py): never fails setup; without a C compiler it warns
# and the pure detector runs (the stamp is then not written, so the next setup tries again)
processor/anomaly/_compiled/.built: processor/anomaly/detector.py processor/anomaly/build.py .venv/.synced
	$(RUN) python -m processor.anomaly.build --stamp $@

setup: .venv/.synced node_modules/.synced .gen/.provider-warm processor/anomaly/_compiled/.built ## install Python, Node and provider bindings
	@command -v terraform >/dev/null || { echo "terraform (>= 1.10) is required on PATH"; exit 1; }

synth: setup ## synthesize both stacks into cdktf.out/ (only this suffix's: a demo's `local` stacks are cleared first)
	rm -rf cdktf.out/stacks
	$(RUN) python main.py

summary: ## print what each synthesized stack contains
	$(RUN) python -m tools.summary

demo: setup servers ## main job: deploy both stacks into a local AWS emulator, run the pipeline, summarize
	$(RUN) python -m localdev demo

destroy-local: ## destroy the local deployment: cdktf destroy both stacks, stop the emulator and servers
	@if [ -d .venv ]; then $(RUN) python -m localdev down; else echo "nothing to destroy (no .venv)"; fi

local-status: ## what the local deployment has running
	@$(RUN) python -m localdev status

servers: ## PostgreSQL, Redis and openssl (the local servers' certificates) for the demo and the tests (apt, when root)
	@if command -v redis-server >/dev/null && command -v openssl >/dev/null && { command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }; \
	then :; elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server postgresql openssl >/dev/null; \
	else echo "install redis-server, openssl and the PostgreSQL server (e.g. sudo apt-get install redis-server postgresql openssl)"; exit 1; fi

test: setup servers ## install what is missing, run the whole test suite
	$(RUN) pytest

test-unit: setup ## the fast unit tests only
	$(RUN) pytest tests/unit -q

lint: setup ## ruff over the Python code and actionlint over .github/workflows
	$(RUN) ruff check .
	$(RUN) actionlint

plan: setup ## terraform plan per stack (STACK=retail-dev for one; TARGET=local|aws) into plans/, then the review
	$(RUN) python -m tools.plan $(if $(TARGET),--target $(TARGET)) $(if $(STACK),--stack $(STACK))
	$(MAKE) --no-print-directory plan-review

plan-review: ## the Markdown review of plans/*.json into plans/report.md; fails on an unacknowledged high risk
	$(RUN) python -m tools.plan_review plans/*.json --out plans/report.md --redact-to plans/redacted
	@echo "report: plans/report.md"

policy: synth ## the project's policy rules over cdktf.out
	$(RUN) python -m policy

checkov: synth ## checkov over cdktf.out with policy/checkov_skips.toml
	$(RUN) python -m tools.checkov_run

validate: synth ## terraform validate both stacks offline against the provider mirror
	@config="$$($(RUN) python -m stacks.terraform_cli 2>/dev/null)"; for stack in $(STACKS); do \
	  (cd cdktf.out/stacks/$$stack && TF_CLI_CONFIG_FILE="$$config" terraform init -backend=false -input=false >/dev/null \
	   && TF_CLI_CONFIG_FILE="$$config" terraform validate) || exit 1; done

cost: setup ## monthly cost per stack from the pinned price table (SUFFIX=dev for one environment; default dev and prod; DETAIL=1 per resource)
	$(RUN) python -m tools.cost $(if $(filter command line environment,$(origin SUFFIX)),--suffix $(SUFFIX),--suffix dev --suffix prod) $(if $(DETAIL),--detail)

bench-synth: setup ## synth time vs the naive provider import
	$(RUN) python -m bench.bench_synth

eval-anomaly: setup ## score the factory anomaly detector and the baselines on a labelled synthetic corpus (NAB)
	$(RUN) python -m processor.anomaly evaluate .gen/anomaly-corpus --seed 7 --series 60 --days 8 --json .gen/anomaly-figures.json

SKAB ?= ../shared/data/skab
eval-anomaly-real: setup ## the detector on real data (SKAB, by its own protocols) beside the synthetic corpus and the baselines
	$(RUN) python -m processor.anomaly evaluate-real --skab $(SKAB) .gen/anomaly-corpus --seed 7 --series 60 --days 8 --json .gen/anomaly-real-figures.json

eval-anomaly-calibration: setup ## does the score mean what it says? claimed against observed tail probabilities on normal data
	$(RUN) python -m processor.anomaly calibration --skab $(SKAB) --json .gen/anomaly-calibration.json

bench-processor: setup servers ## processor records/s through PostgreSQL + Redis vs a naive baseline
	$(RUN) python -m bench.bench_processor

bench-scale: setup servers ## the processor as a fleet of 1, 2, 4 workers on a 4-shard stream: balance, kill -9, read budget
	$(RUN) python -m bench.bench_scale

bench-ingest-iot: setup servers ## sensors through the local IoT broker and rule into PostgreSQL: readings/s, publish-to-commit p50/p99, 1 vs 10 readings a message
	$(RUN) python -m bench.bench_iot

bench-catalog: setup servers ## the catalog read API's reads/s per core, p50/p99 at fixed loads vs PostgreSQL per read and a bare Redis GET; updates/s through the local gateway
	$(RUN) python -m bench.bench_catalog

bench-http-floor: setup ## what a refused request costs the read API's process: the HTTP stack's floor under every read, with and without TLS and framework
	$(RUN) python -m bench.http_floor

# The release tag: PROCESSOR_IMAGE_TAG, else the commit (the repositories' tags are immutable).
RELEASE_TAG ?= $(or $(PROCESSOR_IMAGE_TAG),$(shell git rev-parse --short=12 HEAD 2>/dev/null))
OUTPUTS_FILE := cfn-outputs/all-outputs.json
RELEASE := $(RUN) python -m tools.release

outputs: setup ## write both deployed stacks' outputs to cfn-outputs/all-outputs.json (AWS)
	@mkdir -p cfn-outputs
	$(TF_ENV) ENVIRONMENT_SUFFIX=$(SUFFIX) npx cdktf output $(STACKS) --outputs-file $(OUTPUTS_FILE) >/dev/null

deploy: setup ## release to AWS: check the AUTH tokens, push the image, deploy both stacks with its tag, migrate, wait until stable, check subscriptions
	@test -n "$(RELEASE_TAG)" || { echo "deploy needs a release tag: set PROCESSOR_IMAGE_TAG (or run from a git checkout)"; exit 1; }
	$(RELEASE) check-auth-tokens --suffix $(SUFFIX)
	-@$(MAKE) --no-print-directory outputs >/dev/null 2>&1 && \
	  $(RELEASE) push-image --outputs $(OUTPUTS_FILE) --tag $(RELEASE_TAG) --skip-missing-repositories
	$(TF_ENV) ENVIRONMENT_SUFFIX=$(SUFFIX) PROCESSOR_IMAGE_TAG=$(RELEASE_TAG) npx cdktf deploy $(STACKS) --auto-approve --skip-provider-lock
	@$(MAKE) --no-print-directory outputs
	$(RELEASE) push-image --outputs $(OUTPUTS_FILE) --tag $(RELEASE_TAG)
	$(RELEASE) migrate --outputs $(OUTPUTS_FILE)
	$(RELEASE) rollout --outputs $(OUTPUTS_FILE)
	$(RELEASE) check-subscriptions --outputs $(OUTPUTS_FILE)

# docs/operations.md, "Rotating the Redis AUTH token": after `aws secretsmanager put-secret-value`, from the
# deployed commit (or with PROCESSOR_IMAGE_TAG set to the deployed tag).
rotate-redis-auth: setup ## rotate the Redis AUTH token: ROTATE (old and new valid), roll the tasks onto the new one, then SET (only the new)
	@test -n "$(RELEASE_TAG)" || { echo "rotate-redis-auth needs the deployed tag: set PROCESSOR_IMAGE_TAG"; exit 1; }
	$(RELEASE) check-auth-tokens --suffix $(SUFFIX)
	$(TF_ENV) ENVIRONMENT_SUFFIX=$(SUFFIX) PROCESSOR_IMAGE_TAG=$(RELEASE_TAG) REDIS_AUTH_UPDATE=ROTATE npx cdktf deploy $(STACKS) --auto-approve --skip-provider-lock
	@$(MAKE) --no-print-directory outputs
	$(RELEASE) roll-tasks --outputs $(OUTPUTS_FILE)
	$(TF_ENV) ENVIRONMENT_SUFFIX=$(SUFFIX) PROCESSOR_IMAGE_TAG=$(RELEASE_TAG) REDIS_AUTH_UPDATE=SET npx cdktf deploy $(STACKS) --auto-approve --skip-provider-lock

destroy: setup ## cdktf destroy both stacks
	$(TF_ENV) ENVIRONMENT_SUFFIX=$(SUFFIX) npx cdktf destroy $(STACKS) --auto-approve --skip-provider-lock

push-image: outputs ## build processor/ for linux/arm64 (Docker, Podman or Buildah) and push it to both ECR repositories
	$(RELEASE) push-image --outputs $(OUTPUTS_FILE) --tag $(RELEASE_TAG)

migrate: outputs ## run each stack's migrate task on AWS (master credentials) and wait for it
	$(RELEASE) migrate --outputs $(OUTPUTS_FILE)

clean: ## remove generated files (keeps .venv and node_modules)
	rm -rf cdktf.out .gen .pytest_cache

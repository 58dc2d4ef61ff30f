# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint format bench clean serve predict-health predict-text \
	predict-positive predict-negative

SERVE_PORT ?= 8100
SERVE_URL ?= http://127.0.0.1:$(SERVE_PORT)
# `make predict-text text='Great!'`, `make serve model=NAME@production`: handed to the
# commands through the environment, so no shell quoting can break them.
export LORAFORGE_PREDICT_TEXT := $(text)
export LORAFORGE_PREDICT_MODEL := $(model)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "loraforge needs Python >= 3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/loraforge data demo --out data/demo
	$(BIN)/loraforge data validate data/demo/train.csv
	$(BIN)/loraforge train configs/demo.yaml
	$(BIN)/loraforge predict --experiment latest \
		"Thank you @united, the crew was wonderful and we landed early!" \
		"Two hours on the tarmac and now they lost my bag. Never again." \
		"Self-driving cars will save so many lives, can't wait"
	@echo
	@echo "Next, the same in the browser (README, 'The web UI'):"
	@echo "  $(BIN)/loraforge users create admin --admin && $(BIN)/loraforge up   # then open http://127.0.0.1:8501"
	@echo "Or serve it over HTTP (README, 'Serving predictions'): make serve, then make predict-positive"

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python benchmarks/train_throughput.py

# The prediction server: `make serve` (the latest experiment), `make serve exp=ID`,
# `make serve model=NAME@production` (follows the registry); then, in another terminal:
serve: install
	$(BIN)/loraforge serve --port $(SERVE_PORT) \
		$(if $(exp),--experiment $(exp)) $(if $(model),--model $(model))

predict-health: install
	@$(BIN)/python -m loraforge.serving.probe health --url $(SERVE_URL)

predict-text: install
	@$(BIN)/python -m loraforge.serving.probe predict --url $(SERVE_URL)

predict-positive: install
	@$(BIN)/python -m loraforge.serving.probe predict --url $(SERVE_URL) \
		"Thank you, the crew was wonderful and we landed early!"

predict-negative: install
	@$(BIN)/python -m loraforge.serving.probe predict --url $(SERVE_URL) \
		"Two hours on the tarmac and now they lost my bag. Never again."

clean:
	rm -rf results .loraforge data/demo

# The whole platform under Docker Compose (deploy/compose.yaml): API :8000, UI :8501,
# prediction server :8100, MLflow :5000, Prometheus :9090, Grafana :3000. Its secrets
# come from deploy/.env, which compose refuses to start without.
.PHONY: start-services stop-services
COMPOSE := docker compose -f deploy/compose.yaml --env-file deploy/.env
DEPLOY_ENV_MISSING := deploy/.env is missing: cp deploy/.env.example deploy/.env, then set \
	LORAFORGE_JWT_SECRET, POSTGRES_PASSWORD and GRAFANA_ADMIN_PASSWORD in it (openssl rand -hex 32)

start-services:
	@test -f deploy/.env || { echo "$(DEPLOY_ENV_MISSING)" >&2; exit 2; }
	$(COMPOSE) up -d --build

# Stops and removes the containers; the named volumes (database, data, models) stay.
stop-services:
	@test -f deploy/.env || { echo "$(DEPLOY_ENV_MISSING)" >&2; exit 2; }
	$(COMPOSE) down

# Kubernetes: the Helm chart in deploy/helm/loraforge. `make k8s-template` prints the
# manifests of the development values (`make -s k8s-template > manifests.yaml`);
# `make k8s-deploy` installs or upgrades the release in kubectl's current context (helm
# waits for the migration Job only: a prediction server stays unready until it has a
# model, so watch the rest with `kubectl -n loraforge get pods`).
# Production: K8S_VALUES='deploy/helm/loraforge/values.prod.yaml site.yaml' (site.yaml:
# your hosts, and secrets or existingSecret); K8S_ARGS adds helm flags.
# helm v3.18.0 is fetched once into .venv/tools/ (deploy/helm/get-helm.py); HELM=... uses another.
.PHONY: k8s-template k8s-deploy
HELM_CHART := deploy/helm/loraforge
HELM_PINNED := $(VENV)/tools/helm-v3.18.0/helm
HELM ?= $(HELM_PINNED)
K8S_RELEASE ?= loraforge
K8S_NAMESPACE ?= loraforge
K8S_VALUES ?=
K8S_ARGS ?=
K8S_FLAGS = $(HELM_CHART) --namespace $(K8S_NAMESPACE) $(addprefix -f ,$(K8S_VALUES)) $(K8S_ARGS)

$(HELM_PINNED): deploy/helm/get-helm.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python deploy/helm/get-helm.py >/dev/null && touch $@

k8s-template: $(HELM)
	@$(HELM) template $(K8S_RELEASE) $(K8S_FLAGS)

k8s-deploy: $(HELM)
	$(HELM) upgrade --install $(K8S_RELEASE) $(K8S_FLAGS) --create-namespace --timeout 15m

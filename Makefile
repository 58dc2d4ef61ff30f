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

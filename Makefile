# Set-up and entry points. `make bench` and `make test` create .venv and install on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install bench test test-quick regress baseline lint format clean wheel-check

$(STAMP): pyproject.toml
	@$(PY) -c "import sys; sys.exit(sys.version_info < (3, 11))" || { echo "need Python 3.11+ as $(PY); set PY=python3.x"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its dev tools

bench: $(STAMP)  ## run the default quick suite (pass ARGS="..." for flags)
	$(BIN)/harness bench $(ARGS)

test: $(STAMP)  ## the whole test suite, slow tests included (what CI runs)
	$(BIN)/python -m pytest -n 2 -m "not ray" $(ARGS)
	$(BIN)/python -m pytest -p no:xdist -m ray $(ARGS)

test-quick: $(STAMP)  ## skip the tests marked slow
	$(BIN)/python -m pytest -n 2 -m "not slow" $(ARGS)

SUITE := datasets/frozen/ci
regress: $(STAMP)  ## run the frozen CI suite and compare it with its committed baseline
	rm -rf .regress
	$(BIN)/harness bench $(SUITE)/suite.toml --out .regress --run-id ci
	$(BIN)/harness check --baseline $(SUITE)/baseline.parquet --results .regress/ci \
		--time-threshold 3 --tolerance m_bytes=0.05 $(ARGS)

baseline: $(STAMP)  ## after an intended change: re-run the CI suite and rewrite its baseline
	rm -rf .regress
	$(BIN)/harness bench $(SUITE)/suite.toml --out .regress --run-id ci
	$(BIN)/harness baseline update --results .regress/ci --baseline $(SUITE)/baseline.parquet

wheel-check:  ## build the wheel, install it in a fresh venv, run a shipped paper spec elsewhere
	rm -rf .wheel .venv-wheel && mkdir .wheel
	$(PY) -m venv .venv-wheel
	.venv-wheel/bin/python -m pip install --quiet --upgrade pip
	.venv-wheel/bin/python -m pip wheel --quiet --no-deps -w .wheel .
	.venv-wheel/bin/python -m pip install --quiet .wheel/*.whl
	away=$$(mktemp -d) && cd $$away && $(CURDIR)/.venv-wheel/bin/harness --version \
		&& $(CURDIR)/.venv-wheel/bin/harness datasets list \
		&& $(CURDIR)/.venv-wheel/bin/harness bench paper:magnet --size 2x1 --seeds 2 \
			--runtime local --out $$away/results \
		&& $(CURDIR)/.venv-wheel/bin/harness bench --family solomon --instances C101 \
			--allocators sga --runtime local --no-optimum --out $$away/results \
		&& $(CURDIR)/.venv-wheel/bin/harness report --results $$away/results --out $$away/report \
		&& grep -q "Plotly.newPlot" $$away/report/report.html
	rm -rf .wheel build

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) results .regress .pytest_cache .ruff_cache

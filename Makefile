# gmtnet: the two commands a newcomer needs are `make demo` and `make test`.
# Both create .venv on first use: torch==2.13.0 first (a CPU wheel), then the project.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/gmtnet predict examples/ --plot demo_output
	rm -f demo_output/predictions.csv
	$(BIN)/gmtnet predict examples/ --format csv --out demo_output/predictions.csv

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/python -m pytest -n 2 -q

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis demo_output

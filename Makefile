# Every target bootstraps .venv itself, so a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-flask demo-django test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	cd example_projects/quickstart && ../../$(BIN)/python demo.py

demo-flask: $(STAMP)
	cd example_projects/flask_app && ../../$(BIN)/python demo.py

demo-django: $(STAMP)
	cd example_projects/django_site && ../../$(BIN)/python demo.py

# Tests wait on worker subprocesses much of the time, so TEST_PROCS processes share the cores;
# the tests marked serial then run alone (pytest's exit status 5 means none was selected).
TEST_PROCS ?= 4
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_PROCS) -m "not serial" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m serial $(PYTEST_ARGS) || [ $$? -eq 5 ]

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache example_projects/*/.taskito

# Readiness: `make run` serves the app with demo data; `make test` runs the suite.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: venv run test lint format bench fuzz worker beat demo clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $$(scripts/find-python) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo

# HOST and PORT also set the address in emailed links (SITE_URL), unless SITE_URL is set.
run: demo
	HOST=$(HOST) PORT=$(PORT) $(PY) manage.py runserver $(HOST):$(PORT)

# One test process per core, at most four (each takes its own test database and Redis database:
# readiness/pytest_workers.py); TEST_WORKERS=0 runs the suite in this process.
TEST_WORKERS ?= auto
test: venv
	$(PY) -m pytest -n $(TEST_WORKERS) --maxprocesses=4 $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: venv
	$(PY) bench/import_registry.py $(BENCH_ARGS)
	$(PY) bench/replies.py $(BENCH_ARGS)
	$(PY) bench/dashboard.py $(BENCH_ARGS)
	$(PY) bench/channels.py $(BENCH_ARGS)
	$(PY) bench/api.py $(BENCH_ARGS)
	$(PY) bench/members.py $(BENCH_ARGS)
	$(PY) bench/waves.py $(BENCH_ARGS)

# schemathesis against the API's live schema, on a throwaway SQLite database (scripts/api-fuzz).
fuzz: venv
	env -u DATABASE_URL scripts/api-fuzz

worker: venv
	$(VENV)/bin/celery -A readiness worker --loglevel=info

beat: venv
	$(VENV)/bin/celery -A readiness beat --loglevel=info

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache

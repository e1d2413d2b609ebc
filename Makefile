# The two commands of CONTRACTS section 1, and a few helpers around them.
#   make demo   - install, migrate, build demo GeoIP databases, seed, serve http://localhost:8000/
#   make test   - install with test dependencies and run the whole suite (service legs when configured)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_FLAGS ?= --disable-pip-version-check --quiet
# pytest arguments for every leg (e.g. make test PYTEST_ARGS="-x -k login")
PYTEST_ARGS ?=

.PHONY: demo test typecheck worker lint bench-detection bench-speed bench-load bench-load-logins bench-orders screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e '.[demo]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e '.[test]'
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	mkdir -p var
	$(BIN)/python manage.py build_demo_geoip
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runserver localhost:8000

# The Celery worker for a demo run with REDIS_URL=redis://127.0.0.1:6379/0 (see README).
worker: $(VENV)/.demo-installed
	@test -n "$$REDIS_URL$$CELERY_BROKER_URL" || { echo "make worker needs REDIS_URL (e.g. REDIS_URL=redis://127.0.0.1:6379/0 make worker)"; exit 1; }
	mkdir -p var
	$(BIN)/celery -A demo_site worker --beat --schedule var/celerybeat-schedule --loglevel=info

# SQLite leg always; a PostgreSQL leg when AUTHGUARD_TEST_DATABASE_URL is set (the tests marked
# "postgres" run only there). Redis and browser tests run in the SQLite leg when their service is there.
test: $(VENV)/.test-installed
	bash scripts/run-tests $(BIN)/python $(PYTEST_ARGS)

# mypy with the django-stubs plugin over authguard/ (configuration: [tool.mypy] in pyproject.toml). Not part of
# `make test`; CI runs it once, on the Django 5.2 leg (.ci/run).
typecheck: $(VENV)/.test-installed
	$(BIN)/mypy

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench-detection: $(VENV)/.test-installed
	$(BIN)/python -m bench.detection

bench-speed: $(VENV)/.test-installed
	$(BIN)/python -m bench.speed

# Normal trading through the order guard: share of orders held, cost of a check (issue 5 item 4).
bench-orders: $(VENV)/.test-installed
	$(BIN)/python -m bench.orders

# Middleware cost (issue 4 item 7); uses wrk when installed (Debian: apt-get install wrk), else a Python client.
bench-load: $(VENV)/.test-installed
	$(BIN)/python -m bench.load

# The login path under load (issue 15): gunicorn with 1, 2 and 4 workers on PostgreSQL (database bench_load,
# dropped and created again) and Redis (db 11, flushed), both on 127.0.0.1; docs/benchmarks.md.
bench-load-logins: $(VENV)/.test-installed
	$(BIN)/python -m bench.load logins $(BENCH_ARGS)

clean:
	rm -rf var .pytest_cache build dist *.egg-info

# The docs' screenshots (docs/img/README.md): a fresh demo in a temporary directory, headless Chromium.
screenshots: $(VENV)/.test-installed
	$(BIN)/python scripts/screenshots --out docs/img

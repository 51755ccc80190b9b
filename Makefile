# distviz: `make run` starts the app, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
ARTIFACTS ?= artifacts
SERVER ?= daphne

.PHONY: run run-scaled test test-fast test-browser lint bench migrate venv clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

migrate: venv
	$(PY) manage.py migrate --no-input -v0

# One daphne process, SQLite and the in-memory channel layer: nothing else to install.
run: migrate
	@echo "distviz on http://$(HOST):$(PORT)/ ($(SERVER))"
ifeq ($(SERVER),uvicorn)
	$(VENV)/bin/uvicorn distviz.asgi:application --host $(HOST) --port $(PORT) --ws websockets
else
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) distviz.asgi:application
endif

# Several daphne workers on one Redis and one database (see README: "Past one process").
run-scaled: migrate
	@test -n "$$REDIS_URL" || (echo "run-scaled needs REDIS_URL (e.g. redis://127.0.0.1:6379/0)" && exit 2)
	DISTVIZ_WORKERS=2 $(VENV)/bin/daphne -b $(HOST) -p $(PORT) distviz.asgi:application & \
	DISTVIZ_WORKERS=2 $(VENV)/bin/daphne -b $(HOST) -p $$(($(PORT)+1)) distviz.asgi:application; wait

# Every test: simulation, services, consumers, multi-process (real redis-server), then the
# browser tests in their own pytest process (Playwright's loop and pytest-asyncio's don't mix).
test: venv
	$(PY) -m pytest tests --ignore=tests/browser -q -p no:cacheprovider
	DJANGO_ALLOW_ASYNC_UNSAFE=true DISTVIZ_ARTIFACTS=$(ARTIFACTS) $(PY) -m pytest tests/browser -q -p no:cacheprovider

test-fast: venv
	$(PY) -m pytest tests --ignore=tests/browser -q -x

test-browser: venv
	DJANGO_ALLOW_ASYNC_UNSAFE=true DISTVIZ_ARTIFACTS=$(ARTIFACTS) $(PY) -m pytest tests/browser -q

bench: venv
	$(PY) bench/run.py

lint: venv
	$(PY) manage.py check
	DJANGO_DEBUG=false DJANGO_SECRET_KEY=lint-only-$$(date +%s)-0123456789abcdefghijklmnopqrstuvwxyz DJANGO_ALLOWED_HOSTS=example.org $(PY) manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) .test-db.sqlite3* $(ARTIFACTS)

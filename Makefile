# distviz: `make run` starts the app, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
ARTIFACTS ?= artifacts
SERVER ?= daphne

.PHONY: screenshots run classroom prepare run-scaled test test-deps test-fast test-browser lint bench migrate venv clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

migrate: venv
	$(PY) manage.py migrate --no-input -v0

# What every server start needs: the secret key file (made once, mode 0600, never in git), the
# database, and the static files fingerprinted and compressed for whitenoise.
prepare: migrate
	$(PY) -m distviz.secretkey
	DJANGO_DEBUG=false $(PY) manage.py collectstatic --no-input -v0

# The lecturer's laptop: debug off (no debug page ever reaches a student), plain HTTP.
# DJANGO_DEBUG=true make run shows Django's debug pages while developing.
RUN_ENV = DJANGO_DEBUG=$${DJANGO_DEBUG:-false} DISTVIZ_HTTPS=$${DISTVIZ_HTTPS:-false}
# A class arriving at once queues its WebSocket handshakes: daphne's default 5 s drops some.
DAPHNE = $(VENV)/bin/daphne --websocket_connect_timeout 30

# One process, SQLite and the in-memory channel layer: nothing else to install.
run: prepare
	@echo "distviz on http://$(HOST):$(PORT)/ ($(SERVER))"
ifeq ($(SERVER),uvicorn)
	$(RUN_ENV) $(VENV)/bin/uvicorn distviz.asgi:application --host $(HOST) --port $(PORT) --ws websockets
else
	$(RUN_ENV) $(DAPHNE) -b $(HOST) -p $(PORT) distviz.asgi:application
endif

# A class on the room's Wi-Fi: listens on the local network, advertises the laptop's address
# (or DISTVIZ_PUBLIC_URL) in every join panel and QR code, and allows only that host name.
classroom: prepare
	@url=$$($(PY) -m distviz.lan $(PORT)) && host=$$(echo "$$url" | sed -E 's#^[a-z]+://([^/:]+).*#\1#') && \
	echo "" && echo "  distviz for a class: students open  $$url" && echo "" && \
	$(RUN_ENV) DISTVIZ_PUBLIC_URL="$$url" DJANGO_ALLOWED_HOSTS="$$host,localhost,127.0.0.1" \
	  DJANGO_CSRF_TRUSTED_ORIGINS="$${url%/}" $(DAPHNE) -b 0.0.0.0 -p $(PORT) distviz.asgi:application

# Several daphne workers on one Redis and one database (see README: "Past one process").
run-scaled: prepare
	@test -n "$$REDIS_URL" || (echo "run-scaled needs REDIS_URL (e.g. redis://127.0.0.1:6379/0)" && exit 2)
	$(RUN_ENV) DISTVIZ_WORKERS=2 $(DAPHNE) -b $(HOST) -p $(PORT) distviz.asgi:application & \
	$(RUN_ENV) DISTVIZ_WORKERS=2 $(DAPHNE) -b $(HOST) -p $$(($(PORT)+1)) distviz.asgi:application; wait

# Every test: simulation, services, consumers, multi-process (real redis-server), then the
# browser tests in their own pytest process (Playwright's loop and pytest-asyncio's don't mix).
# test-deps installs what is missing (Chromium, redis-server, fontconfig) with apt where it can,
# and otherwise says what to install; the tests that need a missing part skip with that reason.
test: test-deps venv
	$(PY) -m distviz.secretkey
	$(PY) -m pytest tests --ignore=tests/browser -q -p no:cacheprovider
	DJANGO_ALLOW_ASYNC_UNSAFE=true DISTVIZ_ARTIFACTS=$(ARTIFACTS) $(PY) -m pytest tests/browser -q -p no:cacheprovider

test-deps:
	@bash scripts/test-deps.sh

test-fast: venv
	$(PY) -m pytest tests --ignore=tests/browser -q -x

test-browser: venv
	DJANGO_ALLOW_ASYNC_UNSAFE=true DISTVIZ_ARTIFACTS=$(ARTIFACTS) $(PY) -m pytest tests/browser -q

# The README's pictures of the rooms (docs/screenshots/), taken from what ships.
screenshots: venv
	$(PY) scripts/screenshots.py

bench: venv
	$(PY) bench/run.py

# Type checks (issue 11): every app (the room engine, every simulation and picture) and the
# engine's test concept, mypy --strict (mypy.ini).
TYPED = apps tests/toyconcept

lint: venv
	$(PY) -m mypy $(TYPED)
	$(PY) manage.py check
	DJANGO_DEBUG=false DJANGO_SECRET_KEY=lint-only-$$(date +%s)-0123456789abcdefghijklmnopqrstuvwxyz DJANGO_ALLOWED_HOSTS=example.org $(PY) manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) .test-db.sqlite3* $(ARTIFACTS)

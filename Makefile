# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_URL ?= postgres://postgres@127.0.0.1:5432/idp
HOST ?= 127.0.0.1
PORT ?= 8000
# A throwaway production-like environment for `check --deploy`.
DEPLOY_TMP := $(CURDIR)/var/deploy-check

# Bytecode caches are written (some machines set PYTHONDONTWRITEBYTECODE): without them every
# process compiles the sources it imports again, and pytest rewrites every test module's
# asserts again in each of its processes (half of the suite's 14-second collection).
# __pycache__/ is outside git (.gitignore).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run install browser gettext xmlsec1 ldap-dev slapd messages test check test-sqlite test-postgres lint format migrate clean specs demo bench wrk screenshots

# Argon2id is most of a sign-in's CPU. argon2-cffi-bindings' PyPI wheels compile it for SSE2
# only (a portable wheel cannot assume more); built from the same source for x86-64-v3 (AVX2)
# a verification takes 10-12 ms instead of 17-19 here. Done when this
# CPU has AVX2 and a C compiler is present (the binary needs AVX2: it stays on this machine);
# ARGON2_MARCH= keeps PyPI's wheel. deploy/Dockerfile does the same for the image.
ARGON2_MARCH ?= $(if $(shell command -v cc && grep -qw avx2 /proc/cpuinfo 2>/dev/null && echo y),x86-64-v3)

$(STAMP): requirements.txt requirements-dev.txt | ldap-dev xmlsec1
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(if $(ARGON2_MARCH),CFLAGS="-O3 -march=$(ARGON2_MARCH)" $(BIN)/python -m pip install --quiet \
	  --force-reinstall --no-deps --no-cache-dir --no-binary argon2-cffi-bindings \
	  "$$(grep -i '^argon2-cffi-bindings==' requirements.txt)")
	touch $(STAMP)

# Translations: Django reads compiled catalogues (.mo), built here from the .po files in locale/
# and not kept in git (locale/.gitignore): a binary derived from text is rebuilt, never
# reviewed, and a stale copy would silently show old wording. msgfmt is gettext's (Debian).
PO_FILES := $(wildcard locale/*/LC_MESSAGES/django.po)
MO_FILES := $(PO_FILES:.po=.mo)
NODE_DEPS := tests/docs/node/node_modules/.package-lock.json

locale/%/LC_MESSAGES/django.mo: locale/%/LC_MESSAGES/django.po | gettext
	msgfmt --check --output-file=$@ $<

install: $(STAMP) $(MO_FILES) $(NODE_DEPS) | xmlsec1 ldap-dev

## openid-client, the certified Node RP library the tests run against the IdP (the device flow:
## tests/docs/test_openid_client_device.py), pinned with its dependencies by
## tests/docs/node/package-lock.json; Debian's nodejs brings node and npm.
$(NODE_DEPS): tests/docs/node/package.json tests/docs/node/package-lock.json
	@if ! command -v npm >/dev/null; then \
	  echo "installing Debian's nodejs for the Node interoperability tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
	fi
	npm ci --prefix tests/docs/node --ignore-scripts --no-audit --no-fund --silent
	touch $@

## Debian's gettext: msgfmt for the catalogues, xgettext for `make messages` and `make check`.
gettext:
	@if ! command -v msgfmt >/dev/null || ! command -v xgettext >/dev/null; then \
	  echo "installing Debian's gettext for the translations"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext >/dev/null; \
	fi

## Debian's xmlsec1: pysaml2 verifies SAML messages with it (oauth_clients/saml/); its headers
## (libxmlsec1-dev, pkg-config) let pip compile the python xmlsec package where no wheel fits.
xmlsec1:
	@if ! command -v xmlsec1 >/dev/null || [ ! -f /usr/include/xmlsec1/xmlsec/xmlsec.h ] || ! command -v pkg-config >/dev/null; then \
	  echo "installing Debian's xmlsec1 and libxmlsec1-dev for SAML signatures"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xmlsec1 libxmlsec1-dev pkg-config >/dev/null; \
	fi

## Debian's OpenLDAP and SASL headers: pip compiles python-ldap (directory/) against them.
ldap-dev:
	@if [ ! -f /usr/include/ldap.h ] || [ ! -f /usr/include/sasl/sasl.h ]; then \
	  echo "installing Debian's libldap2-dev and libsasl2-dev for python-ldap"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libldap2-dev libsasl2-dev >/dev/null; \
	fi

## Debian's slapd and ldap-utils: the tests start a real OpenLDAP server (tests/directory/).
slapd:
	@if [ ! -x /usr/sbin/slapd ] || [ ! -x /usr/sbin/slapadd ]; then \
	  echo "installing Debian's slapd for the directory tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slapd ldap-utils >/dev/null; \
	fi

## make messages: new and changed strings of the code into locale/*/LC_MESSAGES/django.po, to
## translate there (idp/translations.py); `make install` compiles them.
messages: install gettext
	$(BIN)/python -m idp.translations update

migrate: install
	$(BIN)/python manage.py migrate --noinput

## make run: install, migrate, generate the dev signing key, serve http://127.0.0.1:8000 on SQLite.
run: migrate
	$(BIN)/python manage.py ensure_signing_key
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## Debian's chromium for the real-browser tests (Playwright drives it; no browser download).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

## Debian's wrk, the load generator of `make bench`.
wrk:
	@if ! command -v wrk >/dev/null; then \
	  echo "installing Debian's wrk for the benchmarks"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	fi

## make bench: gunicorn + wrk figures into docs/performance.md and bench/last.json (several minutes;
## not part of `make test`). BENCH_DB=sqlite, BENCH_ROWS=1000000 (filled token tables),
## BENCH_REDIS=1 (cache, sessions and limits in Redis), BENCH_ARGS="--ops refresh --runs 5".
BENCH_DB ?= postgres
BENCH_ROWS ?= 0
bench: install wrk slapd
	$(BIN)/python bench/run.py --db $(BENCH_DB) --rows $(BENCH_ROWS) $(if $(BENCH_REDIS),--redis) $(BENCH_ARGS)

## Static checks: ruff (lint, format) and mypy on the apps (make check runs them first).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Quality gates: lint, migrations in sync, every string of the code translated in every
## language (makemessages into a temporary copy: idp/translations.py), deploy checks under a
## production-like environment.
check: lint gettext
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -m idp.translations check
	rm -rf $(DEPLOY_TMP) && mkdir -p $(DEPLOY_TMP)
	$(BIN)/python -c "from oauth_clients.keys import generate_rsa_private_key_pem as g; print(g())" > $(DEPLOY_TMP)/signing.pem
	export IDP_ISSUER=https://idp.example.com \
	  DJANGO_SECRET_KEY=$$($(BIN)/python -c "import secrets; print(secrets.token_urlsafe(64))") \
	  IDP_DATA_DIR=$(DEPLOY_TMP) IDP_OIDC_PRIVATE_KEY_FILE=$(DEPLOY_TMP)/signing.pem \
	  IDP_STATIC_ROOT=$(DEPLOY_TMP)/static DATABASE_URL=sqlite:///$(DEPLOY_TMP)/db.sqlite3 && \
	$(BIN)/python manage.py collectstatic --noinput -v0 && \
	$(BIN)/python manage.py check --deploy --fail-level WARNING
	rm -rf $(DEPLOY_TMP)

# Both phases run the suite on two processes (pytest-xdist, one per core): the SQLite phase with
# the browser tests took 8 minutes on one. Each process has its own test database (and Redis
# database: tests/deploy/servers.py).
PYTEST_WORKERS ?= 2

test-sqlite: install browser slapd
	$(BIN)/pytest -n $(PYTEST_WORKERS)

## The suite again on PostgreSQL: a postgres DATABASE_URL, or else PG_URL, the local server
## .ci/run starts. One that does not answer fails the run, never skips it. Left out: the browser
## tests; the tests marked `once`, whose outcome the suite's database cannot change (they read
## only the source, or start instances on databases of their own); and the suites whose time
## goes to a peer (library snippets, xmlsec1, a second IdP, slapd, a SCIM server, the SCIM
## conformance checker) and whose database use is the services' ORM, which the rest of this
## phase runs on PostgreSQL (tests/scim's own tests run SCIM's filters there).
## With them, the service tests (`scaleout`, `redis`: gunicorn instances over PostgreSQL and
## Redis, sessions and rate limits in Redis), which only this phase collects.
PG_PEER_SUITES := tests/docs tests/saml tests/federation tests/directory tests/provisioning \
  tests/scim/test_conformance.py
TEST_PG_URL := $(if $(filter postgres%,$(DATABASE_URL)),$(DATABASE_URL),$(PG_URL))
test-postgres: install slapd
	@$(BIN)/python -c "import sys, psycopg; from urllib.parse import urlsplit; u = urlsplit(sys.argv[1]); \
	  psycopg.connect(u._replace(path='/postgres').geturl(), connect_timeout=5).close()" '$(TEST_PG_URL)' \
	  || { echo "PostgreSQL at $(TEST_PG_URL) does not answer: start it (.ci/run does) or set DATABASE_URL"; exit 1; }
	@echo "Running the suite and the service tests on PostgreSQL ($(TEST_PG_URL)) and Redis"
	DATABASE_URL=$(TEST_PG_URL) $(BIN)/pytest -n $(PYTEST_WORKERS) \
	  -m "not browser and not once or scaleout or redis" $(addprefix --ignore=,$(PG_PEER_SUITES))

## make test: the quality gates and the whole suite on SQLite and on PostgreSQL, the three at
## once: the SQLite phase alone leaves the cores a quarter idle (its browsers and servers wait on
## one another), which the others fill. Each one's output is printed whole when it ends (-O).
## The Debian packages come first (one apt at a time); `make check`, `make test-sqlite` and
## `make test-postgres` run one alone.
test: install browser slapd gettext
	@$(MAKE) --no-print-directory -j3 -O check test-sqlite test-postgres

## make demo: the IdP (:8000) and the demo relying party (:8001) on loopback, demo client
## registered and a demo user created (its password is printed on the first run).
DEMO_PORT ?= 8001
demo: migrate
	HOST=$(HOST) IDP_PORT=$(PORT) DEMO_PORT=$(DEMO_PORT) PYTHON=$(CURDIR)/$(BIN)/python deploy/demo-app/run-demo.sh

## make specs: run the suite and regenerate docs/specs.md (each spec clause, its tests, results).
specs: install browser
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -p tests.spec_report --spec-report=docs/specs.md -q; \
	  status=$$?; echo "docs/specs.md regenerated"; exit $$status

## make screenshots: every reachable page (tests/browser/pages.py) at 1280 and 390 px, in English
## and German, into var/screenshots/ for review (not part of `make test`).
screenshots: install browser
	rm -rf var/screenshots
	$(BIN)/pytest tests/browser/screenshots.py -q
	@echo "screenshots in var/screenshots/"

clean:
	rm -rf $(VENV) staticfiles

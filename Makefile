# RDN: two commands. `make run` sets up and starts the platform with demo data; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
LOCALES := es fr ar

# `make run`: the embedded default, a SQLite file here; demo emails land in ./var/mail as .eml files.
# (Only for `run`: the tests set their own settings.)
RUN_ENV := RDN_DATABASE_URL=$${RDN_DATABASE_URL:-sqlite:///rdn.sqlite3} RDN_MAIL_TRANSPORT=$${RDN_MAIL_TRANSPORT:-files} \
	RDN_PUBLIC_FIGURES=$${RDN_PUBLIC_FIGURES:-true}

.PHONY: run test lint i18n bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "RDN needs Python 3.11 or newer: make PYTHON=python3.12 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(RUN_STAMP)

## run: install, migrate the SQLite database, seed the demo network once, serve at http://127.0.0.1:8000
run: $(RUN_STAMP)
	$(RUN_ENV) $(BIN)/rdn db upgrade
	$(RUN_ENV) $(BIN)/rdn demo
	$(RUN_ENV) $(BIN)/rdn serve

## test: install with the dev extras, lint, run the whole suite (RDN_TEST_DATABASE_URL=postgresql://... for PostgreSQL)
test: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench

## i18n: re-extract the interface's strings and update every catalog
i18n: $(DEV_STAMP)
	$(BIN)/pybabel extract --no-location --sort-output -F babel.cfg -o src/rdn/locale/messages.pot src/rdn
	for l in $(LOCALES); do \
	  if [ -f src/rdn/locale/$$l/LC_MESSAGES/messages.po ]; then \
	    $(BIN)/pybabel update --no-fuzzy-matching -i src/rdn/locale/messages.pot -d src/rdn/locale -l $$l; \
	  else $(BIN)/pybabel init -i src/rdn/locale/messages.pot -d src/rdn/locale -l $$l; fi; \
	done
	# The registrants' languages (rdn.mobility.public_i18n): a catalog domain of its own, from t() and tn().
	$(BIN)/pybabel extract --no-location --sort-output --no-default-keywords -k t -k tn:1,2 \
	  --ignore-dirs=".* ._ accounts cases core matching network ops pathways redphone reports welcome" \
	  -F babel.cfg -o src/rdn/locale/mobility.pot src/rdn
	for l in es ht fr pt ar prs ps; do \
	  b=$$l; if [ $$l = prs ]; then b=fa_AF; fi; \
	  f=src/rdn/locale/$$l/LC_MESSAGES/mobility.po; \
	  if [ -f $$f ]; then $(BIN)/pybabel update --no-fuzzy-matching -D mobility -i src/rdn/locale/mobility.pot -o $$f -l $$b; \
	  else mkdir -p src/rdn/locale/$$l/LC_MESSAGES; $(BIN)/pybabel init -D mobility -i src/rdn/locale/mobility.pot -o $$f -l $$b; fi; \
	done

## bench: run every benchmark (each prints a table)
bench: $(DEV_STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) rdn.sqlite3 rdn.sqlite3-wal rdn.sqlite3-shm var

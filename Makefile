# The two commands a person needs are `make demo` and `make test`; both install what they need first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)
JARS   := var/jars/.fetched-$(shell sha256sum build/pom.xml | cut -c1-12)
SCALE  ?= 2000
SEED   ?= 42

.PHONY: setup demo test test-slow lock jars clean

setup: $(STAMP) $(JARS)

# Packages come from the lock file only, so a fresh machine gets the versions that were tested.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv==0.9.5
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

# JVM jars (Delta, PostgreSQL JDBC) are fetched once, here; Spark never downloads at run time.
$(JARS): build/pom.xml
	rm -rf var/jars && mkdir -p var/jars
	mvn -q -B -f build/pom.xml dependency:copy-dependencies -DexcludeTransitive=true -DoutputDirectory=$(CURDIR)/var/jars
	touch $@

demo: setup
	$(BIN)/jichu demo --scale $(SCALE) --seed $(SEED)

# Two test processes, a file at a time each (a module's fixtures stay in one process), each with its own
# Spark, PostgreSQL and scratch state. Files in collection order: the DAG run (tests/e2e) starts first,
# not last, as xdist's default order (files with the most tests first) would have it.
test: setup
	$(BIN)/python -m pytest -ra -n 2 --dist loadfile --no-loadscope-reorder

# In one process: the province run is one session fixture that three test files share.
test-slow: setup
	$(BIN)/python -m pytest -ra -m slow

# Re-resolve requirements.in into requirements.lock (needs the network; commit the result).
lock:
	$(BIN)/uv pip compile -q requirements.in --python-version 3.11 -o requirements.lock

clean:
	-$(BIN)/jichu services stop
	rm -rf var/warehouse var/postgres var/landing var/runs var/airflow var/gx var/tmp var/outbox var/review

# `make test` is the one command CI (.ci/run) and new users run: it installs everything the
# suite needs (Debian packages, then the project with its test extras) and runs it.
PYTHON ?= python3
DEBIAN_PACKAGES ?= $(shell cat infra/debian-packages.txt 2>/dev/null)

.PHONY: test deps debian-deps lint typecheck audit unit integration

test: deps lint typecheck audit
	$(PYTHON) -m pytest

deps: debian-deps
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'

debian-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian packages:$$missing"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

# mypy over streams/ and alerts/ ([tool.mypy] in pyproject.toml: strict on the engine, the
# events, the queries and alerts; every remaining `type: ignore` names its code and is needed).
typecheck:
	$(PYTHON) -m mypy

# pip-audit over the installed closure of the project's dependencies (infra/audit.py says
# why not the whole environment); STAKEWATCH_AUDIT_STRICT=1 fails when nothing could be audited.
audit:
	$(PYTHON) infra/audit.py

unit:
	$(PYTHON) -m pytest tests/unit

integration:
	$(PYTHON) -m pytest tests/integration

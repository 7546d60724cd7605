# The two quick-start commands:
#   make run    install dualmq into .venv and start the broker (Kafka on :9092, RESP on :6379)
#   make test   install everything the tests need (pip packages, and the Debian packages
#               redis-server, redis-tools, kcat, chromium, openssl and etcd-server when run as root with apt)
#               and run them all
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# chromium renders compare's HTML report in a test (headless screenshot).
# openssl makes the throwaway certificates of the TLS tests.
# etcd-server (the etcd program) coordinates the brokers of a cluster (docs/cluster.md).
DEBIAN_PACKAGES := redis-server redis-tools kcat chromium openssl etcd-server

.PHONY: run test install install-test system-deps clean

run: install
	$(BIN)/dualmq serve

test: install-test system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Interop tests drive real tools nobody here wrote. Install them when we can (root + apt);
# otherwise say which packages are missing: those tests then skip, naming the package.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-cli >/dev/null || missing="$$missing redis-tools"; \
	command -v kcat >/dev/null || missing="$$missing kcat"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; \
	  else \
	    echo "NOTE: missing Debian packages:$$missing (interop tests that need them will skip)"; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) build *.egg-info

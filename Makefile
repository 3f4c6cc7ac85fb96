# pktpath's two set-up commands: `make run` and `make test` (see README).
# Both create .venv and install pktpath into it (editable, with the protobuf
# code generated from protos/) on first use, and again whenever the packaging
# or a .proto changes.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast bench clean

run: $(STAMP)
	$(BIN)/pktpath demo

test: $(STAMP)
	$(BIN)/python -m pytest

# everything but the slow end-to-end tests, for quick local runs
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/wire_vs_scapy.py
	$(BIN)/python benchmarks/rx_path.py
	$(BIN)/python benchmarks/tcp_bulk.py
	$(BIN)/python benchmarks/tracing_cost.py
	$(BIN)/python benchmarks/socket_rr.py

$(STAMP): pyproject.toml setup.py $(wildcard protos/pktpath/v1/*.proto)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build pktpath/v1 *.egg-info

# hwnas: `make run` (set up, then the main job) and `make test` (set up, then pytest).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA := /usr/share/datasets/fashion-mnist
RUN := runs/make-run
export HWNAS_NO_PROGRESS ?= $(if $(CI),1,)

.PHONY: setup data test test-slow bench run clean

setup: $(STAMP) data

# Reinstall only when the package metadata changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

data:
	@if [ ! -d $(DATA) ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist; \
	  else \
	    echo "Fashion-MNIST is missing at $(DATA): run 'sudo apt-get install dataset-fashion-mnist'" >&2; \
	    exit 1; \
	  fi; \
	fi

test: setup
	$(BIN)/pytest

test-slow: setup
	$(BIN)/pytest -m slow

bench: setup
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

# The main job. For now: the MobileNetV2-like reference of fbnet-small on Fashion-MNIST, briefly.
run: setup
	mkdir -p $(RUN)
	$(BIN)/hwnas arch ref fbnet-small mobilenetv2 -o $(RUN)/arch.json && $(BIN)/hwnas train $(RUN)/arch.json --data fashion-mnist --epochs 1 --subset 12000 --out $(RUN)/train

clean:
	rm -rf $(VENV) runs/make-run .pytest_cache

# The two commands of the README contract: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORPUS ?= corpus
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install run test lint bench eval clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first: the pinned CPU wheel lies on disk; letting a resolver choose pulls a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/kb model prepare
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/kb corpus fetch || echo "corpus fetch incomplete: ingesting what is on disk"
	$(BIN)/kb ingest $(CORPUS)
	KB_CORPUS_DIR=$(CORPUS) $(BIN)/streamlit run app.py --server.headless true

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest

bench: install
	$(BIN)/kb bench

eval: install
	$(BIN)/kb eval retrieval
	$(BIN)/kb eval answers
	$(BIN)/kb eval alignment

clean:
	rm -rf $(VENV) .kb

# The two commands of the README contract: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORPUS ?= corpus
STAMP := $(VENV)/.installed
LLM_STAMP := $(VENV)/.installed-llm
# llama-cpp-python is source-only; its default native build dies here with an illegal instruction (AMX).
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install install-llm run test lint bench eval clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first: the pinned CPU wheel lies on disk; letting a resolver choose pulls a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/kb model prepare
	touch $(STAMP)

install: $(STAMP)

# The optional local-LLM extra (answers in --mode llm); the tests of the llm marker need it.
$(LLM_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[dev,llm]'
	touch $(LLM_STAMP)

install-llm: $(LLM_STAMP)

# The seed-library fetch runs in the background (log: .kb/corpus-fetch.log) and never blocks the start: the app
# starts on what is on disk (the shipped documents at least) and its folder watcher ingests what the fetch adds.
run: install
	mkdir -p .kb
	( KB_CORPUS_DIR=$(CORPUS) $(BIN)/kb corpus fetch > .kb/corpus-fetch.log 2>&1 \
		|| echo "kb corpus fetch exited $$? (see above)" >> .kb/corpus-fetch.log ) &
	$(BIN)/kb ingest $(CORPUS)
	KB_CORPUS_DIR=$(CORPUS) $(BIN)/streamlit run app.py --server.headless true

test: install install-llm
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

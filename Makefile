# Two commands on a fresh clone:
#   make run    set up .venv if needed, start the daemon on config/feeds.yaml, print the digest
#   make test   set up .venv if needed, run lint, type checks and the tests (what CI runs)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/feeds.yaml
DB     ?= data/aggregator.db

.PHONY: run update digest feeds serve screenshot test lint format clean help bench bench-quick eval-report train

help:
	@echo "make run     start the daemon on $(CONFIG) (first poll at once, digest printed after it)"
	@echo "make test    lint, type-check and run the tests"
	@echo "make update  one pass over every feed, then exit"
	@echo "make digest  print the digest of the last 24 hours"
	@echo "make serve   the digest page and feeds on http://127.0.0.1:8080/"
	@echo "make screenshot  docs/screenshot.png of the seed digest (needs chromium, chromium-driver)"
	@echo "make bench        the benchmarks, side by side with reader (bench/results/full.*)"
	@echo "make bench-quick  the same at small sizes, under 2 minutes (bench/results/quick.*)"
	@echo "make eval-report  held-out folds of every labelled set and the judged pairs (docs/eval/)"
	@echo "make train   fit the shipped event model from \$$(DATA) (aggregator/dedup/event_model.json)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Re-install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/aggregator run --config $(CONFIG) --db $(DB) --digest

update: $(VENV)/.installed
	$(BIN)/aggregator update --all --config $(CONFIG) --db $(DB)

digest: $(VENV)/.installed
	$(BIN)/aggregator digest --config $(CONFIG) --db $(DB)

feeds: $(VENV)/.installed
	$(BIN)/aggregator feeds --config $(CONFIG) --db $(DB)

serve: $(VENV)/.installed
	$(BIN)/aggregator serve --config $(CONFIG) --db $(DB)

# The README's picture, by the code path of the browser tests (tests/support/browser.py).
screenshot: $(VENV)/.installed
	$(BIN)/python -m tests.support.browser docs/screenshot.png

# The quality reports: every labelled set in 5 held-out folds by story, the judged real-feed
# pairs, and the syndicated copies; the data is read in place from $(DATA).
DATA  ?= ../shared/data
FOLDS ?= 5
EVAL  := $(BIN)/aggregator eval --log-level WARNING
# The shipped event model, fitted from the labelled data (byte for byte what is committed).
train: $(VENV)/.installed
	$(BIN)/aggregator train $(DATA) --log-level WARNING

eval-report: $(VENV)/.installed
	$(EVAL) uci $(DATA)/uci-news-aggregator-sample --folds $(FOLDS) --report docs/eval
	$(EVAL) ecbplus $(DATA)/ecbplus --folds $(FOLDS) --report docs/eval
	$(EVAL) rpm2 $(DATA)/rpm2-french-news-clusters --folds $(FOLDS) --report docs/eval
	$(EVAL) semeval $(DATA)/semeval2022-task8 --folds $(FOLDS) --report docs/eval
	$(EVAL) judged $(DATA) --folds $(FOLDS) --report docs/eval
	$(EVAL) judged $(DATA) --report docs/eval
	$(EVAL) syndication $(DATA) --report docs/eval
	$(EVAL) calibration $(DATA) --folds $(FOLDS) --report docs/eval

lint: $(VENV)/.installed
	$(BIN)/ruff check aggregator tests seeds bench
	$(BIN)/ruff format --check aggregator tests seeds bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

format: $(VENV)/.installed
	$(BIN)/ruff check --fix aggregator tests seeds
	$(BIN)/ruff format aggregator tests seeds

# Benchmarks (never part of `make test`): results in bench/results/<name>.json and .md.
$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench.run

bench-quick: $(VENV)/.bench-installed
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache

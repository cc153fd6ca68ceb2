# Two commands on a fresh machine with only Python and make: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := demo

.PHONY: demo test bench clean install

# uv installs the ~130 pinned packages in seconds where pip takes minutes; pip is the fallback.
# Bytecode is compiled at install (pip does it by default, uv when asked): where PYTHONDONTWRITEBYTECODE
# is set (this project's CI and sandbox machines), Python would otherwise compile every imported module
# from source in every process: 6 s of each `goodhart run`'s 11 s of imports, measured on 2 cores.
$(BIN)/goodhart: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check 'uv==0.13.9' || true
	if [ -x $(BIN)/uv ]; then \
	  $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -c constraints.txt -e '.[dev]'; \
	else \
	  $(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'; \
	fi
	touch $@

install: $(BIN)/goodhart

demo: $(BIN)/goodhart
	$(BIN)/goodhart demo --dir $(DEMO)

test: $(BIN)/goodhart
	$(BIN)/python -m pytest

# `make bench ROWS=10M` (1M, 10M, 100M, 1M-daily or 10M-daily); BENCH_ARGS passes more, e.g. BENCH_ARGS=--keep. See bench/README.md.
# pandas (the reference's only; numpy and python-dateutil come from the venv) goes to .bench-deps, not into
# the venv: importable, pyarrow would import it in every Goodhart step too.
ROWS ?= 1M
bench: $(BIN)/goodhart
	[ -d .bench-deps/pandas ] || $(BIN)/pip install -q --disable-pip-version-check --no-deps --target .bench-deps 'pandas>=2'
	$(BIN)/python -m bench.run --rows $(ROWS) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEMO) .bench-deps build *.egg-info

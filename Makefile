# Two commands on a fresh machine with only Python and make: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := demo

.PHONY: demo test bench clean install

$(BIN)/goodhart: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

install: $(BIN)/goodhart

demo: $(BIN)/goodhart
	$(BIN)/goodhart demo --dir $(DEMO)

test: $(BIN)/goodhart
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info

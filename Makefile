# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing and install the package into it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint setup clean chromium

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name python3 \
		--display-name "Python 3 (dynoai-lab)" >/dev/null
	touch $(STAMP)

# Main job: report on the bundled real Harley pull and a simulated
# closed-loop tuning session, written under reports/.
demo: $(STAMP)
	$(BIN)/dynoai-lab demo --out reports

# The browser tests drive Debian's chromium; install it when missing
# (needs root, as in CI). Without it they skip, except under CI.
chromium:
	command -v chromium >/dev/null || \
		(apt-get update -qq && \
		 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) || \
		echo "warning: chromium could not be installed"

# Every test, the notebooks under nbval included.
test: $(STAMP) chromium
	$(BIN)/python -m pytest tests notebooks dynoai_lab/templates --nbval-lax \
		-p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check dynoai_lab tests notebooks
	$(BIN)/ruff format --check dynoai_lab tests

clean:
	rm -rf $(VENV) reports

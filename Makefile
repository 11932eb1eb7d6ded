# Two commands on a fresh machine: `make run` (the app on the embedded demo) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test screenshots system-deps clean

# The project itself is installed editable, so `dashboard` imports with PYTHONPATH unset.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	@echo "Starting the dashboard at http://localhost:$(PORT) (embedded demo unless PROMETHEUS_URL or a config says otherwise)"
	$(VENV)/bin/streamlit run dashboard/app.py --server.headless true --server.port $(PORT) --browser.gatherUsageStats false

system-deps:
	@scripts/ensure-system-deps.sh

test: $(VENV)/.dev-installed system-deps
	$(PY) -m pytest

# The README's screenshots; needs the test tools (playwright, Debian's chromium), installed here.
screenshots: $(VENV)/.dev-installed system-deps
	$(PY) -m scripts.screenshots

clean:
	rm -rf $(VENV) .pytest_cache

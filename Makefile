# Two commands set a fresh clone up: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test coverage-combine lint bench screenshot clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python tools/demo.py

# The shared-budget tests start a redis-server of their own, the proxy tests a tinyproxy, the
# page's tests drive Debian's chromium: each is installed when missing.
test: $(STAMP)
	tools/ensure-redis
	tools/ensure-tinyproxy
	tools/ensure-chromium
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest
	$(MAKE) --no-print-directory coverage-combine
	$(BIN)/coverage report
	$(MAKE) --no-print-directory lint

# Every measured process writes a data file as it exits, and coverage gives the file its final name
# (`.coverage.<host>.pid<N>.<random>.H<hash>h`) once it is whole. A child killed as it wrote (a
# test's SIGKILL, a signal during its exit) leaves a file without that name, maybe cut short
# ("database disk image is malformed"): only whole files are combined, the rest are dropped.
coverage-combine:
	@whole=$$(find . -maxdepth 1 -name '.coverage.*.H*h'); \
	if [ -n "$$whole" ]; then $(BIN)/coverage combine -q $$whole; fi
	@left=$$(find . -maxdepth 1 -name '.coverage.*' | wc -l); \
	if [ "$$left" -gt 0 ]; then \
		echo "coverage: left out $$left unfinished data file(s), of children killed as they saved"; \
		rm -f .coverage.*; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check bulk_updater tests tools bench docs/examples
	$(BIN)/ruff format --check bulk_updater tests tools bench docs/examples
	$(BIN)/mypy bulk_updater

# The default install is what is measured; nginx and redis-server are installed when missing (the
# bench says so and skips what needs them when they cannot be had). BENCH_ARGS="--quick" to try.
bench: $(STAMP)
	-tools/ensure-nginx
	-tools/ensure-redis
	-tools/ensure-chromium
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

# The picture in docs/ui.md, taken by the browser of the page's tests at the end of a run.
screenshot: $(STAMP)
	tools/ensure-chromium
	UI_SCREENSHOT=docs/ui.png $(BIN)/python -m pytest -q tests/ui/test_browser.py -k european_export

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .coverage .hypothesis samples/*.report.* samples/*.report.*.* samples/*.rejects.*

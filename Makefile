.PHONY: install test lint typecheck imports ci demo bench-ingest
install:
	bash scripts/install.sh
test:
	bash scripts/test.sh
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
typecheck:
	.venv/bin/mypy bkcommon edge ingest api models brightkitchen
imports:
	.venv/bin/lint-imports
ci:
	bash .ci/run
demo:
	bash scripts/install.sh && .venv/bin/brightkitchen demo

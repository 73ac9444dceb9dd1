# The two commands a newcomer needs (both create .venv and install what they need):
#   make run    the load generator against the reference payment service it starts (UI on :8089)
#   make test   the test suite (real Locust, real service, real browser)
.PHONY: run test lint

run:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

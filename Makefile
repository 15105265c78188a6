.DEFAULT_GOAL := help
.PHONY: help run stop status test lint dlq logs

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

run:  ## set up and start the whole platform in the foreground (Ctrl-C stops it)
	@bash scripts/platform.sh up

stop:  ## stop the services and the local RabbitMQ/PostgreSQL/Redis
	@bash scripts/platform.sh down --all

status:  ## what is running
	@bash scripts/platform.sh status

test:  ## the one test command: lint, unit, integration and end-to-end tests
	@bash scripts/test.sh

lint:  ## ruff over the tree
	@bash scripts/bootstrap.sh && .venv/bin/ruff check .

dlq:  ## list parked (dead-lettered) messages
	@.venv/bin/python -m services.common.dlq list

logs:  ## search the logs by correlation id or order id: make logs ID=...
	@.venv/bin/python -m services.common.logsearch $(ID)

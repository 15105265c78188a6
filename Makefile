.DEFAULT_GOAL := help
.PHONY: help run stop status ctl test lint dlq stalled logs bench kpis images up up-lite down-compose k8s-deploy \
        validate-deploy

# `docker compose` where the plugin is installed, else Debian's docker-compose 1.29 (bookworm packages
# no compose plugin); scripts/images.sh installs the latter when neither is present
COMPOSE = $(shell bash scripts/images.sh compose 2>/dev/null || echo docker compose)
# the project name docker-compose.yml cannot carry (Compose 1.29 has no top-level `name:`)
export COMPOSE_PROJECT_NAME ?= ecommerce

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

run:  ## set up and start the whole platform in the foreground (Ctrl-C stops it)
	@bash scripts/platform.sh up

stop:  ## stop the services and the local RabbitMQ/PostgreSQL/Redis
	@bash scripts/platform.sh down --all

status:  ## what is running
	@bash scripts/platform.sh status

ctl:  ## supervisorctl for the stack (any shell): make ctl ARGS="stop streaming:flink_kpis"; STACK_DIR=var/e2e for another
	@bash scripts/platform.sh ctl $(ARGS)

test:  ## the one test command: lint, unit, integration and end-to-end tests
	@bash scripts/test.sh

lint:  ## ruff over the tree
	@bash scripts/bootstrap.sh && .venv/bin/ruff check .

dlq:  ## list parked (dead-lettered) messages
	@.venv/bin/python -m services.common.dlq list

stalled:  ## list sagas parked after too many technical failures; resume one: make stalled RESUME=<order id>
	@.venv/bin/python -m services.orders.stalled $(if $(RESUME),resume $(RESUME),list)

bench:  ## load-test a local stack against its floors (docs/performance.md); flags: make bench ARGS="--duration 120"
	@bash scripts/bench.sh $(ARGS)

kpis:  ## the newest KPI windows of the analytics job: make kpis N=5
	@bash scripts/analytics.sh kpis $(N)

logs:  ## search the logs by correlation id or order id: make logs ID=...
	@.venv/bin/python -m services.common.logsearch $(ID)

images:  ## build the platform, Kafka and Flink images (installs and starts Docker if missing; docs/deployment.md)
	@bash scripts/images.sh

up:  ## docker compose: the whole platform with ELK and Flink (docs/deployment.md; needs .env)
	@test -f .env || { echo "cp .env.example .env, then replace its example secrets"; exit 2; }
	@bash scripts/images.sh
	$(COMPOSE) --profile elk --profile flink up -d --no-build

up-lite:  ## docker compose without ELK and Flink, for small laptops
	@test -f .env || { echo "cp .env.example .env, then replace its example secrets"; exit 2; }
	@bash scripts/images.sh platform kafka
	LOGSTASH_HOST= $(COMPOSE) up -d --no-build

down-compose:  ## stop and remove the compose stack (volumes are kept; add -v by hand to drop them)
	$(COMPOSE) --profile elk --profile flink down

k8s-deploy:  ## build the images in minikube and apply k8s/overlays/minikube (docs/deployment.md)
	@command -v minikube >/dev/null || { echo "minikube is not installed (docs/deployment.md)"; exit 3; }
	minikube image build -t ecommerce-platform:dev .
	minikube image build -t ecommerce-kafka:dev -f docker/kafka/Dockerfile .
	kubectl -n ecommerce delete job migrate seed --ignore-not-found 2>/dev/null || true
	kubectl apply -k k8s/overlays/minikube
	kubectl -n ecommerce rollout status deployment/gateway --timeout=10m
	@echo "gateway: curl --resolve ecommerce.local:80:$$(minikube ip) http://ecommerce.local/health"

validate-deploy:  ## offline checks of Dockerfiles, compose, k8s, Helm, Terraform and CI files
	@bash scripts/validate_deploy.sh

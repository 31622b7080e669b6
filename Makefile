# backend-prep — one command per task. `make help` lists them.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Every package of every module in go.work.
PKGS := github.com/backend-prep/backend-prep/...
SERVICES := order-api validator notifier analytics
BIN := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)

# Pinned tool versions: bumping one is a reviewed change.
GOLANGCI_LINT_VERSION      := v2.15.0
BUF_VERSION                := v1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPCURL_VERSION            := v1.9.3
# Jaeger v2.12.0, for `make jaeger` (scripts/jaeger builds it; not part of TOOLS). Its module
# path has no /v2, so only Jaeger's v1.N tags are Go module versions: v2.12.0 is tagged on the
# commit of v1.75.0.
JAEGER_VERSION             := v1.75.0
TOOLS := $(BIN)/golangci-lint $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/grpcurl

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build the four service binaries into bin/.
	@mkdir -p $(BIN)
	@for s in $(SERVICES); do echo "go build services/$$s -> bin/$$s"; go build -o $(BIN)/$$s ./services/$$s; done

.PHONY: build-static
build-static: ## Build the release binaries as the prod image does (static, musl for the Kafka services).
	scripts/build-static

.PHONY: test
test: $(BIN)/grpcurl $(BIN)/buf ## Unit + integration tests against real brokers (make brokers) and the course's commands.
	@# The brokers of `make brokers` / `make run`, unless the environment names others.
	@if [ -z "$${KAFKA_BOOTSTRAP_SERVERS:-}$${RABBITMQ_URL:-}" ] && scripts/brokers status >/dev/null 2>&1; then \
	  eval "$$(scripts/brokers env)"; echo "using the brokers of make brokers: $$KAFKA_BOOTSTRAP_SERVERS, $$RABBITMQ_URL"; fi; \
	  pkgs=$$(go list $(PKGS) | grep -v '/tests/chaos$$'); \
	  echo "go test -race -count=1 -p 1 -timeout 20m $(PKGS) (all but tests/chaos)"; \
	  go test -race -count=1 -p 1 -timeout 20m $$pkgs; \
	  $(MAKE) --no-print-directory chaos

.PHONY: chaos
chaos: ## The fault suite: brokers and services killed under load, on brokers of its own (about 5 min).
	go test -count=1 -timeout 20m -v -run '^(TestFaults|TestFailover)$$' ./tests/chaos

BENCH_ARGS ?=

.PHONY: bench
bench: ## Measure the system against its ceilings in one run (about 5 min; BENCH_ARGS=-quick: about 1). docs/performance.md
	@# The brokers of `make brokers` (started when they are not running), unless the environment
	@# names others; the bench reads their CPU time from their pid files.
	@if [ -z "$${KAFKA_BOOTSTRAP_SERVERS:-}$${RABBITMQ_URL:-}" ]; then \
	  scripts/brokers status >/dev/null 2>&1 || scripts/brokers up; \
	  eval "$$(scripts/brokers env)"; fi; \
	  go test -run '^$$' -bench '^BenchmarkSystem$$' -benchtime 1x -timeout 60m ./tests/bench -args $(BENCH_ARGS)

.PHONY: bench-cluster
bench-cluster: ## make bench against the cluster of make up, through its port-forwards (ceilings and order-api's load).
	@test -n "$${RABBITMQ_URL:-}" || { echo "RABBITMQ_URL: an administrator's AMQP URL, e.g. the Tilt button bench-cluster's" >&2; exit 2; }
	go test -run '^$$' -bench '^BenchmarkSystem$$' -benchtime 1x -timeout 30m ./tests/bench -args -target cluster $(BENCH_ARGS)

BENCH_COUNT ?= 6

.PHONY: bench-go
bench-go: ## Go benchmarks of the hot paths, BENCH_COUNT runs each, for benchstat (docs/performance.md).
	go test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) ./libs/genproto/... $(foreach s,$(SERVICES),./services/$(s)/...)

FUZZTIME ?= 30s

.PHONY: fuzz
fuzz: ## Fuzz order-api's decoding and validation, and the event decoder against protojson, for FUZZTIME (default 30s) per target.
	cd services/order-api && go test -run '^$$' -fuzz '^FuzzPlaceOrder$$' -fuzztime $(FUZZTIME) ./internal/httpapi
	cd services/order-api && go test -run '^$$' -fuzz '^FuzzParseInteger$$' -fuzztime $(FUZZTIME) ./internal/httpapi
	cd libs/genproto && go test -run '^$$' -fuzz '^FuzzUnmarshalOrderPlacedAgreesWithProtojson$$' -fuzztime $(FUZZTIME) ./orders/v1

.PHONY: test-unit
test-unit: ## Only the tests that need no broker (what the Tilt "unit-tests" button runs).
	go test -short -count=1 $(PKGS)

.PHONY: lint
lint: tools ## gofmt, go vet, golangci-lint, buf lint, generated code up to date.
	buf lint
	buf format -d --exit-code
	scripts/check-generated
	scripts/check-dep-versions
	@out=$$(git ls-files '*.go' | grep -v '\.pb\.go$$' | xargs gofmt -l); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet $(PKGS)
	@for d in $$(go list -m -f '{{.Dir}}'); do echo "golangci-lint $${d#$(CURDIR)/}"; (cd $$d && golangci-lint run --config $(CURDIR)/.golangci.yml ./...); done

.PHONY: generate
generate: tools ## Regenerate libs/genproto from proto/.
	buf generate

.PHONY: tools
tools: $(TOOLS) ## Install the pinned tools into bin/.

$(BIN)/golangci-lint:
	GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
$(BIN)/buf:
	GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(BIN)/grpcurl:
	GOBIN=$(BIN) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

# make brokers PROFILE=ha: three Kafka brokers and a three-node RabbitMQ cluster on loopback
# (scripts/brokers, BROKERS_PROFILE=ha). Without PROFILE=ha, the profile a shell exported
# (`eval "$(scripts/brokers env)"` exports BROKERS_PROFILE=ha) or else the single one.
BROKERS_PROFILE_OF = $(if $(filter ha,$(PROFILE)),ha,$${BROKERS_PROFILE:-single})

.PHONY: brokers
brokers: ## Start real RabbitMQ, Apache Kafka and PostgreSQL on this machine, without Docker (idempotent; PROFILE=ha replicates).
	BROKERS_PROFILE=$(BROKERS_PROFILE_OF) scripts/brokers up

.PHONY: brokers-stop
brokers-stop: ## Stop the brokers started by `make brokers` (PROFILE=ha: the replicated ones).
	BROKERS_PROFILE=$(BROKERS_PROFILE_OF) scripts/brokers down

.PHONY: brokers-reset
brokers-reset: ## Stop the brokers and delete their data: the next start is empty.
	BROKERS_PROFILE=$(BROKERS_PROFILE_OF) scripts/brokers reset

.PHONY: run
run: ## Start the brokers if needed, build, run the four services locally (Ctrl-C or make stop ends it; PROFILE=ha).
	BROKERS_PROFILE=$(BROKERS_PROFILE_OF) scripts/run-local

.PHONY: stop
stop: ## Stop a running `make run` (from another terminal).
	scripts/run-local stop

.PHONY: jaeger
jaeger: ## Jaeger v2 on loopback, in memory, in the foreground: see make run's traces (first build: minutes).
	JAEGER_VERSION=$(JAEGER_VERSION) scripts/jaeger

.PHONY: lab
lab: ## Incidents to repair in the running system, and your progress: make lab; make lab ARGS='start rabbitmq-unbound' (hint, check, reset).
	go run ./labs/selfcheck lab $(ARGS)

.PHONY: selfcheck
selfcheck: ## Check a step of docs/learn against the running system: make selfcheck STEP=3 (1-8 or a name).
	@test -n "$(STEP)" || { echo 'usage: make selfcheck STEP=<1-8|docker|kubernetes|rabbitmq|kafka|grpc|system|observe|replicate>' >&2; exit 2; }
	go run ./labs/selfcheck $(STEP) $(SELFCHECK_ARGS)

KIND_CONTEXT := kind-backend-prep
# make up PROFILE=ha: a cluster of three workers in three zones (kind/ha.yaml) and replicated
# brokers on it (tilt up -- --ha). A cluster keeps the profile it was created with.
PROFILE ?= single
TILT_FLAGS = $(strip $(if $(filter ha,$(PROFILE)),--ha) $(TILT_ARGS))

.PHONY: doctor
doctor: ## Check Docker (running, memory; PROFILE=ha needs more), kind, kubectl, tilt; print install commands.
	PROFILE=$(PROFILE) scripts/doctor

.PHONY: up
up: doctor ## Kind cluster + local registry + tilt up (TILT_ARGS=--kafka-ui adds the Kafka UI; PROFILE=ha replicates).
	PROFILE=$(PROFILE) scripts/cluster-up
	tilt up --context $(KIND_CONTEXT) $(if $(TILT_FLAGS),-- $(TILT_FLAGS))

.PHONY: down
down: ## tilt down, delete the cluster and the registry.
	scripts/cluster-down

# Compose v2's `up --wait`: detached, returns once every container is running and healthy, fails
# when one turns unhealthy or the timeout (seconds) passes (docs.docker.com, docker compose up).
COMPOSE_WAIT_TIMEOUT ?= 300
COMPOSE_MOUNTED := compose/secrets manifests/overlays/dev/rabbitmq-definitions.json manifests/base/rabbitmq/30-backend-prep.conf

.PHONY: compose-up
compose-up: ## The whole system under Docker Compose (compose.yaml): build the images, start, wait until healthy.
	@docker compose version >/dev/null 2>&1 || { echo 'compose-up needs Docker Compose v2 (`docker compose`): https://docs.docker.com/compose/install/' >&2; exit 1; }
	@# Compose bind-mounts these into containers whose users are not you: they must be readable by others.
	@unreadable="$$(find $(COMPOSE_MOUNTED) -type f ! -perm -o=r)"; if [ -n "$$unreadable" ]; then \
	  echo "compose-up: the containers read these files as users of their own, and they are not readable by others:" >&2; \
	  printf '  %s\n' $$unreadable >&2; echo "  chmod o+r them (a checkout made with a strict umask)" >&2; exit 1; fi
	docker compose up --build --wait --wait-timeout $(COMPOSE_WAIT_TIMEOUT)
	docker compose ps

.PHONY: compose-down
compose-down: ## Stop and remove Compose's containers and network (its volumes stay: docker compose down --volumes).
	docker compose down

.PHONY: images
images: ## Build the release (prod) image of every service.
	@for s in $(SERVICES); do echo "docker build --target prod -> backend-prep/$$s:prod"; \
	  DOCKER_BUILDKIT=1 docker build --target prod --build-arg SERVICE=$$s -t backend-prep/$$s:prod . ; done

# signalbox — `make run` brings up the local stack with demo data; `make test`
# runs every test, end to end included. Both install what they need into ./bin.

TEMPORAL_CLI_VERSION := v1.5.1
STRIPE_MOCK_VERSION  := v0.203.0
# The local cluster (make cluster): the server the CLI's dev server embeds,
# its SQL tool, and the UI server at the CLI's version of it.
TEMPORAL_SERVER_VERSION := v1.29.1
TEMPORAL_UI_VERSION     := v2.42.1
BIN      := $(CURDIR)/bin
PROGRAMS := workers starter signals sandbox devstack

.PHONY: run test build vet docs record-histories fuzz chaos bench bench-cluster clean postgres tools help cluster cluster-tools test-cluster compose-cli chromium
.DEFAULT_GOAL := help

help:
	@echo "make run    start the local stack (Temporal + UI, sandbox, worker, intake) with demo data"
	@echo "            make run CLUSTER=1: the same on the local Temporal cluster instead of the dev server"
	@echo "make test   go vet and every test, end to end included"
	@echo "make cluster       a Temporal cluster (history, matching, frontend, worker) on the local PostgreSQL, and its UI"
	@echo "make test-cluster  the end-to-end suite and a chaos run on that cluster (history and matching restarted)"
	@echo "make build  build $(PROGRAMS) into ./bin"
	@echo "make docs   regenerate docs/integrations/*.md from the integration specs"
	@echo "make record-histories  record the replay-test histories from a real run"
	@echo "make fuzz   run every fuzz target for FUZZTIME (default 30s)"
	@echo "make bench  throughput, latency and cost per item against bare Temporal; writes docs/benchmarks.md"
	@echo "make bench-cluster  scale-out with 1, 2 and 4 workers on the local cluster; its section of docs/benchmarks.md"
	@echo "make chaos  several hundred items through worker kills, server restarts and faults, payloads encrypted (SEED=n reproduces)"
	@echo "make clean  remove ./bin and ./.data"

# The pinned Temporal CLI, built from the Go module proxy. A stamp file per
# version makes a change of version rebuild it, and CI reuse it otherwise.
$(BIN)/.temporal-$(TEMPORAL_CLI_VERSION):
	@mkdir -p $(BIN)
	@echo "installing the Temporal CLI $(TEMPORAL_CLI_VERSION) into ./bin (first time only; takes a few minutes)"
	GOBIN=$(BIN) go install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)
	@touch $@

$(BIN)/temporal: $(BIN)/.temporal-$(TEMPORAL_CLI_VERSION)

$(BIN)/.stripe-mock-$(STRIPE_MOCK_VERSION):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) go install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)
	@touch $@

$(BIN)/stripe-mock: $(BIN)/.stripe-mock-$(STRIPE_MOCK_VERSION)

tools: $(BIN)/temporal $(BIN)/stripe-mock

# The cluster's programs: go install names them after their package
# (server, sql), so each is built into a folder of its own and renamed.
$(BIN)/.temporal-server-$(TEMPORAL_SERVER_VERSION):
	@mkdir -p $(BIN)/.build
	@echo "building the Temporal server $(TEMPORAL_SERVER_VERSION) and its SQL tool into ./bin (first time only; about 6 minutes)"
	GOBIN=$(BIN)/.build go install go.temporal.io/server/cmd/server@$(TEMPORAL_SERVER_VERSION)
	GOBIN=$(BIN)/.build go install go.temporal.io/server/cmd/tools/sql@$(TEMPORAL_SERVER_VERSION)
	mv $(BIN)/.build/server $(BIN)/temporal-server
	mv $(BIN)/.build/sql $(BIN)/temporal-sql-tool
	@touch $@

$(BIN)/.temporal-ui-$(TEMPORAL_UI_VERSION):
	@mkdir -p $(BIN)/.build
	GOBIN=$(BIN)/.build go install github.com/temporalio/ui-server/v2/cmd/server@$(TEMPORAL_UI_VERSION)
	mv $(BIN)/.build/server $(BIN)/temporal-ui-server
	@touch $@

cluster-tools: $(BIN)/.temporal-server-$(TEMPORAL_SERVER_VERSION) $(BIN)/.temporal-ui-$(TEMPORAL_UI_VERSION)

build:
	go build -o $(BIN)/ $(addprefix ./,$(PROGRAMS))

# PostgreSQL must answer at 127.0.0.1:5432 (or DATABASE_URL); start the local
# cluster if it is down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
		echo "PostgreSQL is not answering; starting the local cluster"; \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start && \
		for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }

CLUSTER ?=
run: tools build postgres $(if $(CLUSTER),cluster-tools)
	$(BIN)/devstack $(if $(CLUSTER),-cluster)

# The local Temporal cluster alone: frontend 127.0.0.1:7333, UI :8333.
cluster: build postgres cluster-tools
	$(BIN)/devstack -cluster-only

vet:
	go vet ./...

test: tools postgres vet compose-cli chromium
	go test -count=1 -race -timeout 20m ./...

# Debian's chromium, for the tests that drive the Temporal UI in a real
# browser (tests/codec_ui_test.go). Installed when missing and running as
# root; elsewhere those tests fail, saying to install it.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		{ command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		echo "installing Debian's chromium for the browser tests (first time only)" && \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; }; } || \
		echo "chromium is not installed and cannot be here (needs root and apt-get): the browser tests will fail; install Debian's chromium"

# docker-compose (v1, a Debian package) checks docker-compose.yml where no
# Docker engine runs; without root or apt, the test checks the file alone.
compose-cli:
	@command -v docker-compose >/dev/null || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		apt-get install -y -q docker-compose >/dev/null 2>&1) || echo "docker-compose not installed: docker-compose.yml is checked by its test alone"

# The end-to-end suite on the local cluster, each stack in a namespace of its
# own, with a chaos run that restarts its history and matching services.
test-cluster: tools cluster-tools postgres
	go test -count=1 -timeout 40m ./tests -cluster -chaos.server-restarts=2

# The integration cards are generated from the specs the workflows run.
docs:
	go test ./signals -run TestIntegrationCardsAreCurrent -update

# Replay histories, recorded from real runs of every integration's paths;
# workflows/replay_test.go replays them on every make test.
record-histories: tools postgres
	go test ./tests -run 'TestRecord(Customer|Reconcile)?Histories' -record-histories -count=1 -v

# Benchmarks against a bare Temporal workflow; writes docs/benchmarks.md.
# BENCH_FLAGS=-blocked=0 skips the 10,000 waiting items; BENCH_FLAGS='-only
# codec' measures payload encryption alone (its section of the file).
bench: tools build postgres
	go run ./bench $(BENCH_FLAGS)

# Scale-out on the local Temporal cluster: the lead path with 1, 2 and 4
# worker processes beside the bare baseline and the dev server, CPU per
# process, and the vendor rate across four workers; its section of
# docs/benchmarks.md.
bench-cluster: tools cluster-tools build postgres
	go run ./bench -only cluster $(BENCH_FLAGS)

# The large chaos run; make test runs a small one. SEED=<n> reproduces a run.
# Payloads are encrypted, as in production, with a key made for the run
# (every stack the tests start takes SIGNALBOX_PAYLOAD_KEYS from the
# environment); TestEncryptionIsOnWhenTheEnvironmentSetsKeys checks they were.
SEED ?= 0
chaos: tools postgres
	SIGNALBOX_PAYLOAD_KEYS="chaos=$$(head -c 32 /dev/urandom | base64)" \
	go test ./tests -run '^(TestChaos|TestEncryptionIsOnWhenTheEnvironmentSetsKeys)$$' -count=1 -v -timeout 40m -chaos.seed=$(SEED) \
		-chaos.leads=300 -chaos.invoices=100 -chaos.customers=60 -chaos.workers=3 -chaos.kills=12 -chaos.server-restarts=2 -chaos.timeout=25m

# Each fuzz target for FUZZTIME (make test runs their seed corpora only).
FUZZTIME ?= 30s
FUZZ_TARGETS := FuzzDecisionPayload:./workflows FuzzLeadAmendment:./workflows FuzzInvoiceAmendment:./workflows \
	FuzzDecodeLead:./starter FuzzParseRetryAfter:./connectors/rest FuzzParsePlan:./sandbox/emulator FuzzParse:./codec
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzzing $${t%%:*} for $(FUZZTIME)"; \
		go test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) $${t#*:} || exit 1; \
	done

clean:
	rm -rf $(BIN) .data

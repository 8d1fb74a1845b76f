# The two commands: `make run` (the dev stack, in the foreground) and `make test` (lint, types, tests).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck rules pytest deps system-deps bench bench-burst bench-redis bench-memory bench-server bench-dedup bench-overload bench-workers bench-cluster bench-stages fuzz chaos clean

# `make run REDIS=cluster`: Redis as a local cluster of 3 primaries and 3 replicas (deploy/rediscluster.py).
run: deps
	$(PY) deploy/devstack.py $(if $(filter cluster,$(REDIS)),--redis cluster)

test: deps lint typecheck rules pytest

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: deps
	$(VENV)/bin/mypy

# Prometheus alert rules: syntax, then their unit tests.
rules: system-deps
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml

pytest: deps
	$(VENV)/bin/pytest

# The chaos drill, ten minutes (make test runs one minute of it): faults several at once under uploads, then the
# proof that nothing accepted was lost or doubled and the day reconciles (deploy/chaos.py says what it proves).
chaos: deps
	$(PY) -m deploy.chaos --duration $(or $(CHAOS_S),600)

# The long fuzzing run (make test runs a short one): schemathesis, 500 examples per operation and mode against a
# fresh stack, long polls whole; then the property tests with 5,000 cases each.
fuzz: deps
	FUZZ_EXAMPLES=500 FUZZ_LONG=1 $(VENV)/bin/pytest -q tests/e2e/test_fuzz.py
	HYPOTHESIS_PROFILE=long $(VENV)/bin/pytest -q tests/unit/test_properties.py

deps: system-deps $(STAMP)

# Debian packages the stack needs; installed only when missing (the image has PostgreSQL 15's binaries).
# `prometheus` brings both the server (tests/e2e/test_prometheus.py runs it) and promtool (make rules). The JDK,
# Go and Node.js run the channel examples against docs/vectors and the API from /docs alone (tests/e2e). HAProxy and
# iproute2: the gateway hosts behind a load balancer, as network namespaces (tests/e2e/test_load_balancer.py).
# Chromium is the browser the console's tests drive through Playwright (never `playwright install`), with a CJK
# font so that its screenshots show the Chinese pages.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v javac >/dev/null || missing="$$missing openjdk-17-jdk-headless"; \
	command -v go >/dev/null || missing="$$missing golang-go"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v ip >/dev/null || [ -x /usr/sbin/ip ] || missing="$$missing iproute2"; \
	{ command -v prometheus && command -v promtool; } >/dev/null || missing="$$missing prometheus"; \
	test -x /usr/lib/postgresql/15/bin/initdb || missing="$$missing postgresql-15"; \
	/usr/bin/python3 -c 'import cryptography' 2>/dev/null || missing="$$missing python3-cryptography"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	fc-list :lang=zh 2>/dev/null | grep -q . || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	test -d $(VENV) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,load]'
	touch $(STAMP)

# Measurements against this machine's own limits; results under benchmarks/results/. `make bench` measures
# the whole pipeline in one run (5 to 10 minutes, with a 200,000-invoice burst); `make bench-burst` is the
# full 10 M burst on its own (about an hour here); the focused benchmarks run on their own: bench-dedup,
# bench-overload, bench-workers, bench-server, bench-cluster, bench-redis (Redis instructions per invoice of each upload
# script, under valgrind: AGAINST=REV compares with another revision, INVOICES=1 measures single-invoice requests),
# bench-memory (Redis memory by key family after a burst and its drain; BENCH_INVOICES, default 1,000,000).
bench: deps
	$(PY) benchmarks/pipeline_bench.py

bench-burst: deps
	$(PY) benchmarks/pipeline_bench.py --burst-only --no-cached --burst $(or $(BENCH_BURST),10000000)

bench-server: deps
	benchmarks/server_choice.sh | tee benchmarks/results/server_choice.txt

bench-overload: deps
	$(PY) benchmarks/overload_bench.py

bench-workers: deps
	$(PY) benchmarks/worker_bench.py

bench-stages: deps
	$(PY) benchmarks/single_stages.py $(if $(INVOICES),--invoices $(INVOICES))

bench-redis: deps
	$(PY) benchmarks/redis_scripts.py $(if $(AGAINST),--against $(AGAINST)) $(if $(INVOICES),--invoices $(INVOICES))

bench-memory: deps
	$(PY) benchmarks/redis_memory.py $(if $(BENCH_INVOICES),--invoices $(BENCH_INVOICES))

bench-dedup: deps
	$(PY) benchmarks/dedup_bench.py $(if $(BENCH_KEYS),--keys $(BENCH_KEYS))

# 100-invoice uploads on a single Redis, a 3+3 Redis Cluster, and the cluster with WAIT 1 (SHARDS: intake shards).
bench-cluster: deps
	$(PY) benchmarks/cluster_bench.py $(if $(SHARDS),--shards $(SHARDS))

# The Kubernetes PrometheusRule carries the same rules as deploy/prometheus/alerts.yml (a test checks it).
deploy/k8s/prometheusrule.yaml: deploy/prometheus/alerts.yml
	$(PY) -c 'import sys, yaml; rules = yaml.safe_load(open("$<")); print("# Generated from $< by make $@: edit that file, not this one."); yaml.safe_dump({"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "prize-gateway", "labels": {"app.kubernetes.io/name": "prize-gateway"}}, "spec": rules}, sys.stdout, sort_keys=False, allow_unicode=True)' > $@

# A cluster the postgres user could not run under .data lives elsewhere, linked from .data/<stack>/postgres
# (deploy/devstack.py, Stack.postgres_folder): the folders those links name go first, then .data.
clean:
	@for link in .data/postgres .data/*/postgres; do \
	  [ -L "$$link" ] || continue; target=$$(readlink "$$link"); \
	  case "$$target" in */prize-gateway-pg-*) echo "rm -rf $$target"; rm -rf -- "$$target";; esac; \
	done
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache

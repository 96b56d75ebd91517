# pg_auto_failover in Rust: build, install, test.
#
#   make deps     install what is missing (Debian packages), quietly and idempotently
#   make build    build the monitor extension and the keeper
#   make install  install the extension into the system PostgreSQL 15
#   make test     lint, build, install, and run every test (what CI runs)
#   make demo     start a local monitor + primary + secondary and print their state
#   make demo-stop
#   make bench    ours beside pg_auto_failover 2.0 (release build); rewrites docs/benchmarks.md

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
export PGRX_PG_CONFIG_PATH := $(PG_CONFIG)

# release for install; test uses a debug build, which compiles faster
PROFILE ?= release
CARGO_PROFILE_DIR = $(if $(filter release,$(PROFILE)),release,debug)
CARGO_PROFILE_FLAG = $(if $(filter release,$(PROFILE)),--release,)

PKGLIBDIR := $(shell $(PG_CONFIG) --pkglibdir 2>/dev/null)
EXTDIR := $(shell $(PG_CONFIG) --sharedir 2>/dev/null)/extension

APT_PACKAGES = postgresql-15 postgresql-client-15 postgresql-server-dev-15 libclang-dev clang \
               iproute2 openssl python3 \
               pg-auto-failover-cli

# run privileged steps with sudo unless we are root
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build install test lint unit-test sql-test demo demo-stop bench clean

all: build

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" \
	        || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	        --no-install-recommends $$missing >/dev/null \
	    || { $(SUDO) apt-get update -q >/dev/null && \
	         $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	             --no-install-recommends $$missing >/dev/null; }; \
	fi
	@id postgres >/dev/null 2>&1 || { echo "the 'postgres' OS user is missing"; exit 1; }

build: deps
	cargo build $(CARGO_PROFILE_FLAG) -p pgautofailover -p keeper

install: build
	$(SUDO) install -m 755 target/$(CARGO_PROFILE_DIR)/libpgautofailover.so $(PKGLIBDIR)/pgautofailover.so
	$(SUDO) install -m 644 monitor-ext/pgautofailover.control $(EXTDIR)/pgautofailover.control
	$(SUDO) install -m 644 sql/pgautofailover--2.0.sql $(EXTDIR)/pgautofailover--2.0.sql

lint: deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

unit-test:
	cargo test -p fsm -p keeper

sql-test:
	cargo build -p keeper
	cargo test -p tests -- --test-threads=2
	cargo test -p bench

test: deps lint
	$(MAKE) install PROFILE=debug
	$(MAKE) unit-test
	$(MAKE) sql-test

demo: install
	BUILT=target/$(CARGO_PROFILE_DIR)/pg_autoctl scripts/demo.sh

demo-stop:
	scripts/demo-stop.sh

# pg_auto_failover 2.0 runs from a relocated copy of the Postgres tree (bench/pgaf20-tree.sh),
# never from the system's: both monitor extensions are called pgautofailover.
bench: deps
	$(MAKE) install PROFILE=release
	cargo build --release -p bench
	target/release/pgaf-bench --pgctl "$$(bench/pgaf20-tree.sh)" $(BENCH_ARGS)

clean:
	cargo clean

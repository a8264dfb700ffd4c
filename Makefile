# libserf: `make` builds, `make demo` runs the main job, `make test` runs every test layer.
CARGO ?= cargo
SHARED ?= ../shared
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

.PHONY: all build demo decode-captures test lint check-header bench clean

all: build

build:
	$(CARGO) build --release

# A three-node libserf cluster on loopback: members, a kill -9 seen as failed, a graceful leave.
demo:
	bash examples/demo.sh

# Decode the golden captures of real HashiCorp agents (plain, then encrypted) layer by layer.
decode-captures:
	$(CARGO) run --release --example decode_capture -- $(SHARED)/vectors/captures/plaintext.pcap | tail -n 40
	$(CARGO) run --release --example decode_capture -- $(SHARED)/vectors/captures/encrypted.pcap XXo7nB4PKktsjZ4PGis8TQ== | tail -n 5

# Release builds: the simulator and real-socket tests run protocol time, which debug builds slow.
# The last line sums every runner's result: "total: N passed, N failed".
test: lint check-header
	mkdir -p target
	$(CARGO) test --release --all-targets 2>&1 | tee target/test-output.log
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "total: %d passed, %d failed\n", p, f }' target/test-output.log

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# build.rs regenerates include/serf.h; the committed header must match what the code says.
check-header:
	$(CARGO) build
	git diff --exit-code -- include/serf.h

bench:
	$(CARGO) bench --bench codec

clean:
	$(CARGO) clean

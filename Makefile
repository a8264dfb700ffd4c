# libserf: `make` builds, `make demo` runs the main job, `make test` runs every test layer.
CARGO ?= cargo
SHARED ?= ../shared

.PHONY: all build demo test lint check-header bench clean

all: build

build:
	$(CARGO) build --release

# Until the agent lands, the demo decodes the golden captures of real HashiCorp agents
# (plain, then encrypted with the key the capture's notes give) layer by layer.
demo:
	$(CARGO) run --release --example decode_capture -- $(SHARED)/vectors/captures/plaintext.pcap | tail -n 40
	$(CARGO) run --release --example decode_capture -- $(SHARED)/vectors/captures/encrypted.pcap XXo7nB4PKktsjZ4PGis8TQ== | tail -n 5

test: lint check-header
	$(CARGO) test --all-targets
	$(CARGO) test --doc

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

# libserf: `make` builds, `make demo` runs the main job, `make test` runs every test layer.
CARGO ?= cargo
CC ?= cc
CXX ?= c++
PREFIX ?= /usr/local
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR := $(firstword $(subst ., ,$(VERSION)))
LIB := target/release
CDIR := target/c
# HashiCorp's agents, the truth for compatibility: serf v0.11.0 (what users run) and v0.9.8 (the
# older protocol era), each pinned by a Go module in tests/reference/ and built with the Go on PATH.
GO ?= go
REFERENCE := target/reference/serf
REFERENCE_09 := target/reference/serf-0.9
# Programs link the shared library in place (rpath); its soname needs the .so.MAJOR link.
C_LINK := -L$(LIB) -lserf -pthread -Wl,-rpath,$(abspath $(LIB))
C_WARN := -Wall -Wextra -Werror -g -Iinclude
SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: all build dist demo decode-captures test tools faults mdns browser metrics-parse lint check-header bench clean \
	c-examples c-test valgrind check-exports install readme-install readme-c shipped-agent reference python-test \
	go-test readme-go fuzz-smoke

all: build c-examples

# build.rs leaves the soname link (libserf.so.MAJOR) beside the library.
build:
	$(CARGO) build --release

# The artifacts to ship (target/<host triple>/dist): whole-program optimisation, no debug info,
# stripped (cargo strips the shared library; the static library keeps only the symbols a linker
# needs; the agent's static link keeps libc.a's symbol table, so it is stripped here).
#
# The `serf` agent is statically linked, as HashiCorp's is (why: README, "Performance"; how it
# resolves names without the host's NSS modules: crates/agent/src/name_service.rs). The static
# flag goes to the agent's own link only (`cargo rustc`), so the libraries and every dependency
# build once. The explicit --target keeps these artifacts apart from what cargo's own commands
# write into target/dist.
HOST := $(shell $(CARGO) -vV | sed -n 's/^host: //p')
DIST := target/$(HOST)/dist
dist:
	$(CARGO) build --profile dist --target $(HOST) --lib
	$(CARGO) rustc --profile dist --target $(HOST) -p serf-agent --bin serf -- -C target-feature=+crt-static
	strip --strip-debug $(DIST)/libserf.a
	strip $(DIST)/serf
	@ls -l $(DIST)/libserf.so $(DIST)/libserf.a $(DIST)/serf | awk '{ printf "%-24s %6.2f MB\n", $$9, $$5 / 1e6 }'

# A three-node libserf cluster on loopback: members, a kill -9 seen as failed, a graceful leave.
demo:
	bash examples/demo.sh

# Decode the golden captures of real HashiCorp agents (plain, then encrypted) layer by layer.
decode-captures:
	$(CARGO) run --release --example decode_capture -- tests/data/captures/plaintext.pcap | tail -n 40
	$(CARGO) run --release --example decode_capture -- tests/data/captures/encrypted.pcap XXo7nB4PKktsjZ4PGis8TQ== | tail -n 5

# Release builds: the simulator and real-socket tests run protocol time, which debug builds slow.
# The last line sums every runner's result (cargo's and the C suites') and names the system layers
# that could not run: "total: N passed, N failed[, K layers skipped (faults, valgrind)]".
test: tools lint check-header reference
	mkdir -p target
	$(CARGO) test --release --no-fail-fast --all-targets 2>&1 | tee target/test-output.log
	$(CARGO) test --release --no-fail-fast --doc 2>&1 | tee -a target/test-output.log
	$(MAKE) --no-print-directory --keep-going faults mdns browser c-test check-exports valgrind readme-c shipped-agent python-test metrics-parse go-test readme-go fuzz-smoke 2>&1 | tee -a target/test-output.log
	@awk '/^test result:/ { p += $$4; f += $$6 } /^[0-9]+ passed, [0-9]+ failed$$/ { p += $$1; f += $$3 } \
		/^SKIPPED [a-z-]+:/ { k++; sub(":", "", $$2); names = names (k > 1 ? ", " : "") $$2 } \
		END { printf "total: %d passed, %d failed", p, f; \
			if (k) printf ", %d layer%s skipped (%s)", k, (k > 1 ? "s" : ""), names; print "" }' target/test-output.log

# What make test needs in user space, fetched here: rustup's clippy and rustfmt, and cargo-fuzz
# (pinned, --locked) under target/tools. The Python venv and the Go modules come with their layers.
CARGO_FUZZ_VERSION := 0.13.2
TOOLS := $(abspath target/tools)
tools:
	@if command -v rustup >/dev/null; then \
		for c in clippy rustfmt; do rustup component list --installed | grep -q "^$$c" || rustup component add $$c; done; \
	fi
	@test -x $(TOOLS)/bin/cargo-fuzz || $(CARGO) install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked --root $(TOOLS)

# A layer that needs the system prints one line instead of running where the system cannot run it:
# "SKIPPED <layer>: needs <what>; run <command>". Under SERF_TEST_STRICT=1 (as .ci/run sets) that
# is a failure. Arguments: layer, what it needs, the command that provides it.
skip_layer = echo "SKIPPED $(1): needs $(2); run $(3)"; \
	if [ "$${SERF_TEST_STRICT:-0}" = 1 ]; then echo "SERF_TEST_STRICT=1: the $(1) layer must run"; exit 1; fi

# The fault tests (crates/agent/tests/faults.rs, ignored by a plain cargo test): network namespaces and
# nftables rules, so root, iproute2 and nftables.
faults:
	@missing=$$([ "$$(id -u)" = 0 ] || echo root; command -v ip >/dev/null || echo iproute2; \
		command -v nft >/dev/null || echo nftables); \
	if [ -z "$$missing" ]; then \
		$(CARGO) test --release --test faults -- --ignored; \
	else \
		$(call skip_layer,faults,$$(echo $$missing | sed 's/ / and /g'),sudo apt-get install iproute2 nftables && sudo make faults); \
	fi

# The cluster page in a real headless browser (crates/agent/tests/page_in_browser.rs, ignored by
# a plain cargo test): Debian's chromium driven through chromedriver.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		$(CARGO) test --release -p serf-agent --test page_in_browser -- --ignored --nocapture; \
	else \
		$(call skip_layer,browser,chromium and chromium-driver,sudo apt-get install chromium chromium-driver && make browser); \
	fi

# The live mDNS tests (crates/agent/src/mdns.rs, crates/agent/tests/agent_mdns.rs, ignored by a plain cargo test):
# multicast inside a network namespace of their own, so root.
mdns:
	@if [ "$$(id -u)" = 0 ]; then \
		$(CARGO) test --release -p serf-agent --lib mdns -- --ignored && \
		$(CARGO) test --release --test agent_mdns -- --ignored; \
	else \
		$(call skip_layer,mdns,root,sudo make mdns); \
	fi

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# build.rs regenerates include/serf.h; the committed header must match what the code says.
check-header:
	$(CARGO) build
	git diff --exit-code -- include/serf.h

# Benchmarks, separate from `make test`: each part writes a section to target/bench/, and the
# sections go into BENCHMARKS.md under the machine, the date and the commands. The cluster part
# runs our `serf` and the reference agent through the same CLI; nothing runs concurrently.
BENCH_PARTS := micro density simulator cluster faults load
# Built with the `dist` profile (fat LTO), as `make dist` builds what is shipped.
# Every part is built first, in one cargo run, so the links proceed in parallel; codec's results
# go into protocol's summary table when they are from this run (BENCH_SINCE).
BENCHES := codec protocol density simulator cluster faults load
# The benches that run agents (cluster, faults, load) measure the shipped one, $(DIST)/serf.
BENCH_AGENT := SERF_BENCH_AGENT=$(abspath $(DIST)/serf)
bench: reference dist
	rm -rf target/bench && mkdir -p target/bench
	$(CARGO) bench --profile dist --no-run $(BENCHES:%=--bench %)
	BENCH_SINCE=$$(date +%s) $(CARGO) bench --profile dist --bench codec --bench protocol
	$(CARGO) bench --profile dist --bench density
	$(CARGO) bench --profile dist --bench simulator
	$(BENCH_AGENT) $(CARGO) bench --profile dist --bench cluster
	$(BENCH_AGENT) $(CARGO) bench --profile dist --bench faults
	$(BENCH_AGENT) $(CARGO) bench --profile dist --bench load
	{ echo "# Benchmarks"; echo; \
	  echo "Written by \`make bench\` on $$(date -u '+%Y-%m-%d %H:%M UTC'), commit $$(git rev-parse --short HEAD)."; \
	  echo "Machine: $$(nproc) cores, $$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $$(free -g | awk '/^Mem:/ { print $$2 }') GiB."; \
	  echo "Commands: \`cargo bench --profile dist\` with \`--bench codec --bench protocol\`, \`--bench density\`, \`--bench simulator\`, \`--bench cluster\`, \`--bench faults\`, \`--bench load\`; the last three run the agent \`make dist\` ships ($(DIST)/serf, statically linked)."; \
	  for part in $(BENCH_PARTS); do echo; cat target/bench/$$part.md; done; } | \
	  sed 's#(\([a-z_]*\.svg\))#(docs/\1)#g' > BENCHMARKS.md
	mkdir -p docs && cp target/bench/*.svg docs/
	@echo "wrote BENCHMARKS.md"

clean:
	$(CARGO) clean

# --- C ---------------------------------------------------------------------------------------

c-examples: build
	mkdir -p $(CDIR)
	$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L $(C_WARN) examples/c/cluster.c $(C_LINK) -o $(CDIR)/cluster
	$(CC) -std=c99 -D_GNU_SOURCE $(C_WARN) examples/c/epoll_events.c $(C_LINK) -o $(CDIR)/epoll_events

# Both reference agents, then their versions. Offline once the Go module cache holds the modules.
reference: $(REFERENCE) $(REFERENCE_09)
	@for bin in $^; do printf '%s: ' $$bin; ./$$bin version | sed -n 1p; done

# GOTOOLCHAIN=local: the go.mod files name Go 1.26, and a machine builds with its own Go.
REFERENCE_GO := GOTOOLCHAIN=local GOFLAGS='-mod=readonly -trimpath -buildvcs=false' \
	GOCACHE=$(abspath target/go-cache)
$(REFERENCE): tests/reference/serf-0.11/go.mod tests/reference/serf-0.11/go.sum
$(REFERENCE_09): tests/reference/serf-0.9/go.mod tests/reference/serf-0.9/go.sum
$(REFERENCE) $(REFERENCE_09):
	@command -v $(GO) >/dev/null || { echo "make reference needs Go >= 1.26 on PATH (https://go.dev/doc/install)"; exit 1; }
	mkdir -p $(dir $@)
	cd $(dir $<) && $(REFERENCE_GO) $(GO) build -o $(abspath $@) github.com/hashicorp/serf/cmd/serf

# The C suite, sanitized, as C and as C++ (the header must be C++-clean). Each prints
# "N passed, N failed" as its last line.
c-test: build reference
	mkdir -p $(CDIR)
	$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L $(C_WARN) $(SANITIZE) tests/c/test_serf.c $(C_LINK) -o $(CDIR)/test_serf
	$(CXX) -x c++ -std=c++11 $(C_WARN) $(SANITIZE) tests/c/test_serf.c -x none $(C_LINK) -o $(CDIR)/test_serf_cpp
	@echo "== C suite (C, ASan+UBSan)"
	timeout 600 $(CDIR)/test_serf $(REFERENCE)
	@echo "== C suite (C++, ASan+UBSan)"
	timeout 600 $(CDIR)/test_serf_cpp $(REFERENCE)
	@echo "== examples/c/epoll_events"
	$(MAKE) --no-print-directory c-examples
	timeout 60 $(CDIR)/epoll_events

# Under valgrind (no invalid access, no uninitialised read, no definite or indirect leak): the
# three-node example, then the whole C suite built without sanitizers (valgrind cannot run
# ASan binaries), which prints its own "N passed, N failed".
VALGRIND := timeout 900 valgrind --error-exitcode=1 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
valgrind: c-examples reference
	@if ! command -v valgrind >/dev/null; then \
		$(call skip_layer,valgrind,valgrind,sudo apt-get install valgrind && make valgrind); exit 0; \
	fi; \
	set -x; \
	$(VALGRIND) $(CDIR)/cluster; \
	echo "1 passed, 0 failed"; \
	$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L $(C_WARN) tests/c/test_serf.c $(C_LINK) -o $(CDIR)/test_serf_plain; \
	echo "== C suite under valgrind"; \
	$(VALGRIND) $(CDIR)/test_serf_plain $(REFERENCE)

# libserf.so exports serf_* symbols and nothing else, and a plain cargo build leaves the soname link
# a program linked against it needs.
check-exports: build
	@others=$$(nm -D --defined-only $(LIB)/libserf.so | awk '{ print $$3 }' | grep -v '^serf_' || true); \
	if [ -n "$$others" ]; then echo "libserf.so exports non-serf symbols:"; echo "$$others"; exit 1; fi
	@echo "libserf.so exports $$(nm -D --defined-only $(LIB)/libserf.so | grep -c ' serf_') serf_* symbols and nothing else"
	readelf -d $(LIB)/libserf.so | grep -q 'SONAME.*libserf.so.$(MAJOR)'
	test "$$(readlink $(LIB)/libserf.so.$(MAJOR))" = libserf.so
	@echo "1 passed, 0 failed"

# Installs the shipped libraries (versioned soname), the serf binary, serf.h and serf.pc under
# $(DESTDIR)$(PREFIX). Outside the loader's own directories the .pc adds an rpath, so a program
# built with `pkg-config --libs serf` runs without LD_LIBRARY_PATH.
SYSTEM_PREFIXES := /usr /usr/local
RPATH := $(if $(filter $(PREFIX),$(SYSTEM_PREFIXES)),,-Wl,-rpath,$${libdir} )
install: dist
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(DIST)/libserf.so $(DESTDIR)$(PREFIX)/lib/libserf.so.$(VERSION)
	ln -sf libserf.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libserf.so.$(MAJOR)
	ln -sf libserf.so.$(MAJOR) $(DESTDIR)$(PREFIX)/lib/libserf.so
	install -m 0644 $(DIST)/libserf.a $(DESTDIR)$(PREFIX)/lib/libserf.a
	install -m 0755 $(DIST)/serf $(DESTDIR)$(PREFIX)/bin/serf
	install -m 0644 include/serf.h $(DESTDIR)$(PREFIX)/include/serf.h
	printf '%s\n' \
		'prefix=$(PREFIX)' \
		'libdir=$${prefix}/lib' \
		'includedir=$${prefix}/include' \
		'' \
		'Name: serf' \
		'Description: HashiCorp Serf (gossip membership), wire-compatible, in Rust' \
		'Version: $(VERSION)' \
		'Libs: -L$${libdir} $(RPATH)-lserf' \
		'Libs.private: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc' \
		'Cflags: -I$${includedir}' > $(DESTDIR)$(PREFIX)/lib/pkgconfig/serf.pc

# An install as the README shows one (make install PREFIX=…), for the quick starts: the shipped
# library must be stripped.
README_PREFIX := $(abspath target/readme-install)
readme-install:
	rm -rf $(README_PREFIX) && mkdir -p $(README_PREFIX)
	$(MAKE) --no-print-directory install PREFIX=$(README_PREFIX)
	! readelf -S $(README_PREFIX)/lib/libserf.so.$(VERSION) | grep -q '\.symtab'

# The installed agent: static, runs with an empty environment, and resolves names without
# loading a host NSS module (tests/shipped/agent.sh prints "N passed, N failed").
shipped-agent: readme-install
	timeout 120 bash tests/shipped/agent.sh $(README_PREFIX)/bin/serf

# The README's C quick start, compiled as written through that install's pkg-config (shared and
# static), then run with an empty environment.
readme-c: readme-install
	awk '/^<!-- c-quickstart -->/ { on = 1; next } on && /^```c/ { grab = 1; next } grab && /^```/ { exit } grab { print }' README.md > $(README_PREFIX)/quickstart.c
	test -s $(README_PREFIX)/quickstart.c
	PKG_CONFIG_PATH=$(README_PREFIX)/lib/pkgconfig; export PKG_CONFIG_PATH; \
	$(CC) -Wall -Wextra -Werror $(README_PREFIX)/quickstart.c -o $(README_PREFIX)/quickstart $$(pkg-config --cflags --libs serf); \
	$(CC) -Wall -Wextra -Werror $(README_PREFIX)/quickstart.c -o $(README_PREFIX)/quickstart-static \
		$$(pkg-config --cflags serf) $$(pkg-config --variable=libdir serf)/libserf.a $$(pkg-config --static --libs-only-l serf | sed 's/-lserf//')
	timeout 60 env -i $(README_PREFIX)/quickstart
	timeout 60 env -i $(README_PREFIX)/quickstart-static
	@echo "1 passed, 0 failed"

# --- Python --------------------------------------------------------------------------------------

# pyserf as a user gets it: `pip wheel` builds a wheel around the shipped (stripped) libserf; the
# wheel must carry a platform tag and no symbol table, and installs into a fresh venv with no cargo
# on PATH. Then pytest (its summary becomes "N passed, 0 failed" for make test's total; a failure
# fails the target through pipefail), mypy --strict on the package, and the example run from that
# venv.
WHEEL_DIR := target/wheel
# /metrics of a running agent through Prometheus' own Python parser (tests/http).
metrics-parse:
	test -x target/pyserf-venv/bin/pytest || { python3 -m venv target/pyserf-venv && target/pyserf-venv/bin/pip install -q pytest; }
	target/pyserf-venv/bin/pip install -q prometheus_client==0.26.0
	$(CARGO) build --release --bin serf
	target/pyserf-venv/bin/pytest -q -p no:cacheprovider tests/http 2>&1 | \
		sed -E 's/^=* ?([0-9]+) passed in .*$$/\1 passed, 0 failed/'

python-test: reference
	rm -rf target/pyserf-venv $(WHEEL_DIR)
	python3 -m venv target/pyserf-venv
	target/pyserf-venv/bin/pip install -q pytest mypy
	target/pyserf-venv/bin/pip wheel -q --no-deps ./bindings/python -w $(WHEEL_DIR)
	wheel=$$(ls $(WHEEL_DIR)/pyserf-$(VERSION)-py3-none-linux_*.whl) && \
	rm -rf $(WHEEL_DIR)/unpacked && python3 -m zipfile -e $$wheel $(WHEEL_DIR)/unpacked && \
	lib=$$(find $(WHEEL_DIR)/unpacked -name libserf.so) && test -f "$$lib" && \
	! readelf -S "$$lib" | grep -q '\.symtab' && \
	ls -l $$wheel | awk '{ printf "%s: %.2f MB\n", $$9, $$5 / 1e6 }' && \
	env PATH=/usr/bin:/bin target/pyserf-venv/bin/pip install -q $$wheel
	# pytest's own entry point keeps bindings/python off sys.path: the tests import the wheel.
	cd bindings/python && ../../target/pyserf-venv/bin/pytest -q -p no:cacheprovider tests 2>&1 | \
		sed -E 's/^=* ?([0-9]+) passed in .*$$/\1 passed, 0 failed/'
	target/pyserf-venv/bin/mypy --strict bindings/python/pyserf
	@echo "1 passed, 0 failed"
	cd /tmp && timeout 60 $(abspath target/pyserf-venv)/bin/python $(abspath examples/python/membership_service.py) \
		--name venv-example --bind 127.0.0.1:0 --duration 2
	@echo "1 passed, 0 failed"

# --- Go ------------------------------------------------------------------------------------------

# The toolchain for the Go binding (any Go >= 1.19; not $(GO), which only builds the reference
# agent). Its build cache lives under target/, toolchain downloads are off, cgo is on.
GO_BINDING ?= go
GO_BINDING_ENV := GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=1 \
	GOCACHE=$(abspath target/go-cache) GOPATH=$(abspath target/go-path)

# The Go binding against this checkout (-tags libserf_inrepo): gofmt, go vet, go test -race (its
# output is followed by "N passed, N failed", counting top-level tests, for make test's total; a
# failure fails the target through pipefail), then the example: vetted, built and run for 2 s.
go-test: build reference
	@unformatted=$$($$($(GO_BINDING) env GOROOT)/bin/gofmt -l bindings/go examples/go); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	cd bindings/go && $(GO_BINDING_ENV) $(GO_BINDING) vet -tags libserf_inrepo ./...
	cd bindings/go && $(GO_BINDING_ENV) SERF_REFERENCE=$(abspath $(REFERENCE)) \
		$(GO_BINDING) test -race -count=1 -timeout 10m -tags libserf_inrepo -v ./... 2>&1 | \
		awk '{ print } /^--- PASS/ { p++ } /^--- FAIL/ { f++ } END { printf "%d passed, %d failed\n", p, f }'
	mkdir -p target/go
	cd examples/go && $(GO_BINDING_ENV) $(GO_BINDING) vet -tags libserf_inrepo ./...
	cd examples/go && $(GO_BINDING_ENV) $(GO_BINDING) build -tags libserf_inrepo -o $(abspath target/go/example) .
	timeout 60 target/go/example -node go-example -bind 127.0.0.1:0 -duration 2s | tee target/go/example.out
	grep -q '^members (1):' target/go/example.out
	grep -q '^time is up: leaving' target/go/example.out
	@echo "1 passed, 0 failed"

# The README's Go quick start, built as a Go user builds it: a module of its own requiring the
# binding (a replace points at bindings/go, as the module is not published), plain go vet and go
# build through the pkg-config of an install, then run with an empty environment.
readme-go: readme-install
	rm -rf target/readme-go && mkdir -p target/readme-go
	awk '/^<!-- go-quickstart -->/ { on = 1; next } on && /^```go/ { grab = 1; next } grab && /^```/ { exit } grab { print }' README.md > target/readme-go/main.go
	test -s target/readme-go/main.go
	printf '%s\n' 'module readmequickstart' '' 'go 1.19' '' \
		'require github.com/libserf/libserf/bindings/go v0.0.0' '' \
		'replace github.com/libserf/libserf/bindings/go => $(abspath bindings/go)' > target/readme-go/go.mod
	cd target/readme-go && PKG_CONFIG_PATH=$(README_PREFIX)/lib/pkgconfig $(GO_BINDING_ENV) $(GO_BINDING) vet ./...
	cd target/readme-go && PKG_CONFIG_PATH=$(README_PREFIX)/lib/pkgconfig $(GO_BINDING_ENV) $(GO_BINDING) build -o quickstart .
	timeout 60 env -i target/readme-go/quickstart
	@echo "1 passed, 0 failed"

# --- Fuzzing -------------------------------------------------------------------------------------

# Every cargo-fuzz target in fuzz/ (stable toolchain, --sanitizer none) for FUZZ_TIME seconds,
# seeded from the golden vectors read in place; a crash, hang or OOM fails the target. Prints
# "N passed, N failed" for make test's total.
FUZZ_TIME ?= 20
fuzz-smoke: tools
	PATH="$(TOOLS)/bin:$$PATH" CARGO="$(CARGO)" bash fuzz/run.sh tests/data $(FUZZ_TIME)

# gst-affect — the two commands for a newcomer: `make demo` and `make test`.
# Every target runs `make setup` first (idempotent, cached).

CARGO ?= cargo
PLUGIN_DIR := $(CURDIR)/target/debug
export GST_PLUGIN_PATH := $(PLUGIN_DIR)$(if $(GST_PLUGIN_PATH),:$(GST_PLUGIN_PATH))
# Keep the plugin registry of this tree apart from the user's.
export GST_REGISTRY := $(CURDIR)/target/gst-registry.bin

.PHONY: setup build build-demo test lint demo bench inspect clean-cache fresh-check

setup:
	bash scripts/setup.sh

# The trainer `affect-train` (feature `train` of the root package) is built, linted and
# tested with everything else.
FEATURES := --features affect/train

build: setup
	$(CARGO) build --all-targets $(FEATURES)

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets $(FEATURES) -- -D warnings

# One cargo build of everything tests need (the plugin .so included), then the tests.
test: lint
	$(CARGO) build --all-targets $(FEATURES)
	$(CARGO) test --all-targets $(FEATURES)

# The Ray job's fault test alone (also part of `make test`): a local head and a second
# worker node, 12 inputs, the worker node killed mid-run (~30 s).
.PHONY: test-ray
test-ray: setup
	$(CARGO) test $(FEATURES) -p gst-plugin-affect --test ray_job -- --nocapture

inspect: build
	gst-inspect-1.0 affect

# The demo needs the plugin and the va_timeline example only: no trainer, so a fresh
# machine does not compile burn (~7 minutes on 2 cores) before it sees a result.
build-demo: setup
	$(CARGO) build -p gst-plugin-affect -p affect --lib --example va_timeline

demo: build-demo
	bash scripts/demo.sh

bench: setup
	bash bench/run.sh

# `make demo` then `make test` as a newcomer, in a fresh Debian 12 root (chroot) with a clone
# of the committed HEAD: catches what this machine has but `make setup` does not install.
# Slow (a full build, ~30-60 min on 2 cores), needs root; not part of CI. See the script.
fresh-check:
	bash scripts/fresh-check.sh

clean-cache:
	rm -rf .cache

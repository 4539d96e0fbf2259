# The two commands a newcomer needs:
#   make study   - fetch the data and run the whole study (digits study): results/ and img/
#   make test    - formatting, lints, every test, and a real smoke run on full MNIST
#
# DIGITS_DATA_MIRROR names a local folder of verified data files (CI sets it);
# without it the data are downloaded from the public mirrors and verified by checksum.

CARGO ?= cargo
# The tests, the smoke run and the test targets below use the dev profile (optimised, see
# Cargo.toml, but with debug assertions and overflow checks: the CNN trains 2-3 times slower).
# The study uses the release profile; it compiles once more, in minutes, and saves an hour.
DIGITS_DEV := $(CARGO) run --quiet --bin digits --
DIGITS := $(CARGO) run --release --quiet --bin digits --

.PHONY: test lint unit smoke study data bin

test: lint unit smoke width-test env-test notebooks-test browser-test draw-test

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test

# One epoch of the MLP on all of MNIST into a temporary folder; fails under 95% on MNIST test.
smoke:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(DIGITS_DEV) --data "$$tmp/data" data fetch && \
	$(DIGITS_DEV) --data "$$tmp/data" train mlp --epochs 1 --out "$$tmp/run" --json > "$$tmp/run.json" && \
	python3 .ci/check_smoke.py "$$tmp/run.json" 0.95

# The same short runs give the same bits with AVX-512 kernels as with AVX2 kernels, gemm's and
# ours (a second build without gemm's AVX-512 ones; crate/examples/width_test.sh says how).
.PHONY: width-test
width-test:
	CARGO="$(CARGO)" bash crate/examples/width_test.sh

# The `digits` command, built where everyone can see it compile (minutes on a fresh machine);
# `cargo run --quiet` then starts it at once. The tests share this profile and target.
bin:
	$(CARGO) build --bin digits

data: bin
	$(DIGITS_DEV) data fetch

# The whole study (`digits study`): every model variant x 5 seeds, every test domain in both framings,
# the robustness curves; tables into results/, figures into img/. Finished runs are reused
# and interrupted ones resume, so running it again only does what is missing.
study:
	$(DIGITS) data fetch
	$(DIGITS) study

# The evcxr notebooks: Jupyter (pinned, in a virtual environment), the Rust kernel, and a run
# of all six in quick mode plus the cross-cell test. Setup is skipped when already done.
# JupyterLab is in the same pinned requirements file as the headless runs: `make test` needs
# both (the browser test below), so one install into one virtual environment is the fastest
# for CI, and it keeps a single list for environment.yml to match.
#
# Everything lives in .venv: Jupyter, evcxr_jupyter (.venv/bin), the `rust` kernel spec
# (.venv/share/jupyter/kernels), JupyterLab's settings (no news pop-up, no autosave: running a
# notebook must not rewrite the committed one unasked) and the kernels' warm build folders
# (.venv/evcxr-builds, see notebooks/kernel/rust_kernel.py). `make clean-lab` removes it all.
EVCXR_VERSION := 0.22.0
VENV := .venv
PY := $(VENV)/bin/python
JUPYTER := $(VENV)/bin/jupyter
EVCXR := $(VENV)/bin/evcxr_jupyter
KERNEL := notebooks/kernel/rust_kernel.py
# Cargo's build of evcxr_jupyter, kept outside .venv so that reinstalling after `make
# clean-lab` takes seconds, not the minutes of a first build.
EVCXR_BUILD ?= $(HOME)/.cache/digits/evcxr-build
# The crate's sources: the warm build is redone when they change.
CRATE_SOURCES := crate/Cargo.toml Cargo.lock $(shell find crate/src -name '*.rs' 2>/dev/null)

.PHONY: notebooks-setup notebooks-run notebooks-test notebooks-full lab lab-test env-test browser-test clean-lab
notebooks-setup: $(VENV)/.digits-warm

$(VENV)/.digits-setup: notebooks/requirements.txt notebooks/kernel/overrides.json $(KERNEL)
	@echo "notebooks setup [1/3]: Jupyter into $(VENV) (pip)"
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r notebooks/requirements.txt
	$(JUPYTER) labextension disable --level=sys_prefix @jupyterlab/apputils-extension:announcements >/dev/null 2>&1
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp notebooks/kernel/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	@echo "notebooks setup [2/3]: evcxr_jupyter $(EVCXR_VERSION) into $(VENV)/bin (cargo: minutes the first time)"
	CARGO_TARGET_DIR=$(EVCXR_BUILD) $(CARGO) install --locked --root $(VENV) evcxr_jupyter --version $(EVCXR_VERSION)
	$(PY) $(KERNEL) install $(EVCXR)
	touch $@

# The notebooks' first cell (`:dep digits`) compiled once, so that a kernel's first cell takes
# seconds; redone when the crate changes.
$(VENV)/.digits-warm: $(VENV)/.digits-setup $(CRATE_SOURCES)
	@echo "notebooks setup [3/3]: the notebooks' first cell, compiled once"
	$(PY) $(KERNEL) warm
	touch $@

# Execute every notebook headless in quick mode (DIGITS_QUICK=1) into a temporary copy; fails on
# any cell error. Prints each notebook's time.
notebooks-run: notebooks-setup data
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	for nb in notebooks/*.ipynb; do \
	  start=$$(date +%s); \
	  DIGITS_QUICK=1 $(JUPYTER) nbconvert --to notebook --execute \
	    --ExecutePreprocessor.timeout=3600 --ExecutePreprocessor.kernel_name=rust \
	    --output-dir "$$tmp" "$$nb" || exit 1; \
	  echo "$$nb: ran in quick mode in $$(( $$(date +%s) - start )) s"; \
	done

notebooks-test: notebooks-run
	$(PY) notebooks/tests/check_cross_cell.py

# Execute the notebooks in place on the full data, figures into img/ (what is committed).
# Notebook 5 reads the study's runs when all of them are in runs/ (`make study`), else the
# committed results/.
notebooks-full: notebooks-setup data
	for nb in notebooks/*.ipynb; do \
	  start=$$(date +%s); \
	  DIGITS_EXPORT=1 $(JUPYTER) nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=7200 --ExecutePreprocessor.kernel_name=rust "$$nb" || exit 1; \
	  echo "$$nb: ran in full mode in $$(( $$(date +%s) - start )) s"; \
	done

# JupyterLab on the notebooks (opens a browser; Ctrl-C stops it). `DIGITS_QUICK=1 make lab`
# for the quick mode.
LAB_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)
lab: notebooks-setup data
	$(JUPYTER) lab --notebook-dir=notebooks $(LAB_FLAGS)

# Everything `make notebooks-setup` put in place: .venv (Jupyter, evcxr, the kernel spec, the
# warm builds) and the notebooks' git-ignored figures (notebooks/out). Cargo's build of evcxr
# stays in $(EVCXR_BUILD); delete that folder too to reclaim its space.
clean-lab:
	rm -rf $(VENV) notebooks/out

# No person needed: starts JupyterLab headless on a free local port, checks that it lists the
# Rust kernel and serves notebook 1, and runs notebook 1's first code cells in a Rust kernel
# through the server's websocket, in quick mode.
lab-test: notebooks-setup data
	$(PY) notebooks/tests/check_lab.py

# A real browser (Debian's chromium, driven by Playwright from PyPI; no browser is downloaded)
# opens JupyterLab as a person would: notebook 1's first cells by Shift+Enter, then notebook 5
# from top to bottom without runs/; then checks that no tracked file changed.
browser-test: notebooks-setup data
	@test -x /usr/bin/chromium || { echo "browser-test needs Debian's chromium: apt-get install -y chromium"; exit 1; }
	$(VENV)/bin/pip install -q -r notebooks/tests/requirements.txt
	$(PY) notebooks/tests/check_browser.py

# `digits draw`'s page in Debian's chromium (Playwright, as browser-test): quick runs trained
# into a temporary folder (about a minute), then a stroke, a small 7 and an example photo drawn
# or picked as a person would. Screenshots in notebooks/out/draw-test/; `make draw-screenshot`
# also writes img/draw.png.
.PHONY: draw-test draw-screenshot
draw-test: bin data
	@test -x /usr/bin/chromium || { echo "draw-test needs Debian's chromium: apt-get install -y chromium"; exit 1; }
	@test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r notebooks/tests/requirements.txt
	DIGITS="$(DIGITS_DEV)" $(PY) notebooks/tests/check_draw.py

draw-screenshot: bin data
	DIGITS="$(DIGITS_DEV)" $(PY) notebooks/tests/check_draw.py --export

# The Slurm path (docs/cluster/slurm-array.sh) on a one-node cluster started on this machine,
# checked byte for byte against one process, with a task cancelled and one shard started
# twice. Needs root (it installs slurm-wlm and munge if missing and starts their daemons).
.PHONY: cluster-test
cluster-test: bin data
	DIGITS="$${CARGO_TARGET_DIR:-target}/debug/digits" bash docs/cluster/one-node-test.sh

# environment.yml pins what notebooks/requirements.txt pins, and names the Makefile's evcxr.
env-test:
	python3 notebooks/tests/check_environment.py

# Put the `digits` command on PATH: cargo installs it into ~/.cargo/bin (rustup puts that
# folder on PATH). Without it, run the command as `cargo run --release --bin digits -- ...`.
.PHONY: install
install:
	$(CARGO) install --path crate --locked

# The two commands a newcomer needs:
#   make study   - fetch the data and run the whole study (digits study): results/ and img/
#   make test    - formatting, lints, every test, and a real smoke run on full MNIST
#
# DIGITS_DATA_MIRROR names a local folder of verified data files (CI sets it);
# without it the data are downloaded from the public mirrors and verified by checksum.

CARGO ?= cargo
# The dev profile is optimised (Cargo.toml), so tests and the study share one build.
DIGITS_DEV := $(CARGO) run --quiet --bin digits --
DIGITS := $(DIGITS_DEV)

.PHONY: test lint unit smoke study data

test: lint unit smoke env-test notebooks-test lab-test

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

data:
	$(DIGITS) data fetch

# The whole study (`digits study`): every model variant x 5 seeds, every test domain in both framings,
# the robustness curves; tables into results/, figures into img/. Finished runs are reused
# and interrupted ones resume, so running it again only does what is missing.
study: data
	$(DIGITS) study

# The evcxr notebooks: Jupyter (pinned, in a virtual environment), the Rust kernel, and a run
# of all six in quick mode plus the cross-cell test. Setup is skipped when already done.
# JupyterLab is in the same pinned requirements file as the headless runs: `make test` needs
# both (the lab test below), so one install into one virtual environment is the fastest for CI,
# and it keeps a single list for environment.yml to match.
EVCXR_VERSION := 0.22.0
VENV := .venv
JUPYTER := $(VENV)/bin/jupyter

.PHONY: notebooks-setup notebooks-run notebooks-test notebooks-full lab lab-test env-test
notebooks-setup: $(VENV)/.digits-setup
$(VENV)/.digits-setup: notebooks/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r notebooks/requirements.txt
	command -v evcxr_jupyter >/dev/null || $(CARGO) install --locked evcxr_jupyter --version $(EVCXR_VERSION)
	PATH="$(VENV)/bin:$$PATH" evcxr_jupyter --install
	touch $@

# Execute every notebook headless in quick mode (DIGITS_QUICK=1) into a temporary copy; fails on
# any cell error. Prints each notebook's time (the first includes compiling the crate in evcxr).
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
	$(VENV)/bin/python notebooks/tests/check_cross_cell.py

# Execute the notebooks in place on the full data (what is committed). Run `make study` first.
notebooks-full: notebooks-setup data
	for nb in notebooks/*.ipynb; do \
	  $(JUPYTER) nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=7200 --ExecutePreprocessor.kernel_name=rust "$$nb" || exit 1; \
	done

# JupyterLab on the notebooks (opens a browser; Ctrl-C stops it). `DIGITS_QUICK=1 make lab`
# for the quick mode.
LAB_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)
lab: notebooks-setup data
	$(JUPYTER) lab --notebook-dir=notebooks $(LAB_FLAGS)

# No person needed: starts JupyterLab headless on a free local port, checks that it lists the
# Rust kernel and serves notebook 1, and runs notebook 1's first code cells in a Rust kernel
# through the server's websocket, in quick mode.
lab-test: notebooks-setup data
	$(VENV)/bin/python notebooks/tests/check_lab.py

# environment.yml pins what notebooks/requirements.txt pins, and names the Makefile's evcxr.
env-test:
	python3 notebooks/tests/check_environment.py

# Put the `digits` command on PATH: cargo installs it into ~/.cargo/bin (rustup puts that
# folder on PATH). Without it, run the command as `cargo run --release --bin digits -- ...`.
.PHONY: install
install:
	$(CARGO) install --path crate --locked

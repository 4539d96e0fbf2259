#!/usr/bin/env bash
# The study spread over a Slurm cluster: one array task per shard, then one job that gathers.
#
#   job=$(sbatch --parsable docs/cluster/slurm-array.sh)    # 4 shards (the --array range below)
#   sbatch --dependency=afterok:$job --wrap 'target/release/digits study'   # gathers when all are done
#
# Every task runs `digits study --shard i/n` in the repository on a shared file system. The 60
# (model × seed) runs (the 12 variants of `VARIANTS` in crate/src/study/mod.rs × 5 seeds) are
# dealt to the n shards by expected cost; `digits study --plan --shards n` prints which runs
# each shard trains and its share. An adapted run goes with the run it adapts, so no task waits
# on another's. Each task trains its runs into the shared runs/ folder and caches their
# predictions: that is stage one. Stage two is the gathering job, started by Slurm only when
# every task has succeeded (`afterok`); it trains and predicts nothing and writes results/,
# img/ and the numbers in README.md and docs/, the same files one process would have written.
#
# Faults: finished runs are reused and an interrupted one resumes from its checkpoint, so a
# task that was cancelled, pre-empted or failed is simply submitted again, alone:
#
#   sbatch --array=2 --export=ALL,DIGITS_SHARDS=4 docs/cluster/slurm-array.sh
#
# Each run folder is locked while it trains (crate/src/lock.rs): a second task given the same
# shard waits for the first and then reuses its runs, and a lock whose holder is gone is
# reported and taken over. `make cluster-test` runs all of this on a one-node cluster.
#
# Arguments after the script go to `digits study` (e.g. `--quick --runs /shared/runs`), and
# DIGITS names the binary (default target/release/digits).
#
# Before submitting, once, on a login node: `make data` (fetch and verify the data) and
# `cargo build --release` (so the tasks do not all compile at once).
#
#SBATCH --job-name=digits-study
#SBATCH --array=0-3
#SBATCH --cpus-per-task=2
#SBATCH --mem=8G
#SBATCH --time=02:00:00
#SBATCH --output=runs/slurm-%A_%a.log
set -euo pipefail

# Run from the repository root (sbatch starts the job in the folder it was submitted from).
cd "${SLURM_SUBMIT_DIR:-.}"

# Array indices are the shard numbers, from 0. The shard count is the array's size, so
# changing --array is all it takes to use more tasks; a task submitted again alone names the
# count in DIGITS_SHARDS.
index="${SLURM_ARRAY_TASK_ID:?submit this script with sbatch --array}"
count="${DIGITS_SHARDS:-${SLURM_ARRAY_TASK_COUNT:?submit this script with sbatch --array}}"

# Each task uses the cores Slurm gave it and no more.
export RAYON_NUM_THREADS="${SLURM_CPUS_PER_TASK:-2}"

exec "${DIGITS:-target/release/digits}" study --shard "$index/$count" "$@"

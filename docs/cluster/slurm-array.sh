#!/usr/bin/env bash
# The study spread over a Slurm cluster: one array task per shard, then one job that gathers.
#
#   sbatch docs/cluster/slurm-array.sh                      # 4 shards (the --array range below)
#   sbatch --dependency=afterok:JOBID --wrap 'target/release/digits study'   # gather when all are done
#
# Every task runs `digits study --shard i/n` in the repository on a shared file system: task i
# trains runs i, i+n, i+2n, ... of the 60 (model × seed) runs (the 12 variants of `VARIANTS` in
# crate/src/study/mod.rs × 5 seeds; an adapted run goes with the run it adapts) into the shared
# runs/ folder and caches their predictions. Runs already finished are reused and an interrupted one resumes, so
# a task that was pre-empted or failed can simply be resubmitted. The gathering job trains and
# predicts nothing; it writes results/, img/ and the numbers in README.md and docs/, the same
# files one process would have written.
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

# The shard count is the array's size, so changing --array is all it takes to use more tasks.
count="${SLURM_ARRAY_TASK_COUNT:?submit this script with sbatch --array}"
index="${SLURM_ARRAY_TASK_ID:?submit this script with sbatch --array}"
# Slurm's array indices may start anywhere (e.g. --array=1-4): shards are numbered from 0.
index=$(( index - ${SLURM_ARRAY_TASK_MIN:-0} ))

# Each task uses the cores Slurm gave it and no more.
export RAYON_NUM_THREADS="${SLURM_CPUS_PER_TASK:-2}"

exec target/release/digits study --shard "$index/$count"

#!/usr/bin/env bash
# `make cluster-test`: the Slurm path of docs/cluster/slurm-array.sh, run on a one-node Slurm
# cluster started on this machine, checked against one process.
#
# 1. Installs Debian's slurm-wlm and munge if missing (as root), starts munged, slurmctld and
#    slurmd with a configuration generated into a temporary folder (the node's CPUs from
#    `slurmd -C`, proctrack/linuxproc, task/none, no cgroups, no accounting).
# 2. Runs the quick study in one process.
# 3. Runs the same quick study as a 3-task array plus a gathering job (`afterok`), with two
#    faults: task 1 is cancelled mid-run and submitted again alone, and shard 0 is started
#    twice at once.
# 4. Checks that results/ and img/ are byte-identical to the one process's (runs.csv but for
#    its columns of wall-clock seconds), and that no run
#    was trained twice (each run's "training" line appears once over every task's log, a
#    resumed run's "(resuming)" aside).
# Every daemon it started is stopped by pid on exit, failed or not.
#
# DIGITS names the binary (default: the dev build in CARGO_TARGET_DIR or target/).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

fail() { echo "cluster-test: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root: it starts Slurm's daemons (slurmd needs root)"
DIGITS="${DIGITS:-${CARGO_TARGET_DIR:-$root/target}/debug/digits}"
[ -x "$DIGITS" ] || fail "no digits binary at $DIGITS: run \`cargo build\` first"
DATA="${DIGITS_DATA_DIR:-$root/data}"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq slurm-wlm munge >/dev/null; }
fi

T=$(mktemp -d /tmp/digits-slurm.XXXXXX)
pids=()
jobs=()
munged_started=""
stop_all() {
  local rc=$?
  # Jobs first, so no task outlives the daemons (slurmd's job steps are its children).
  if [ -n "${SLURM_CONF:-}" ]; then
    scancel --full "${jobs[@]}" 2>/dev/null || true
    for _ in $(seq 50); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$munged_started" ] && [ -f /run/munge/munged.pid ]; then
    kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
  fi
  [ $rc = 0 ] || echo "cluster-test: failed; logs kept in $T" >&2
  [ $rc != 0 ] || rm -rf "$T"
  exit $rc
}
trap stop_all EXIT

# munge: Slurm's authentication. No systemd here, so it is started by hand, as munge.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 0755 /run/munge
  runuser -u munge -- /usr/sbin/munged
  munged_started=1
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

# The node announces 4 CPUs (config_overrides) so that two tasks of the same shard overlap
# with the others even on a 2-core machine; each task uses one thread.
node=$(slurmd -C | head -1 | sed -E 's/CPUs=[0-9]+/CPUs=4/; s/CoresPerSocket=[0-9]+/CoresPerSocket=4/')
mkdir -p "$T/state" "$T/spool" "$T/log"
cat >"$T/slurm.conf" <<EOF
ClusterName=digits-test
SlurmctldHost=$(hostname -s)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
$node State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$T/slurm.conf"
slurmctld -D -i -f "$SLURM_CONF" >"$T/slurmctld.out" 2>&1 & pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$T/slurmd.out" 2>&1 & pids+=($!)
for _ in $(seq 100); do
  sinfo -h -o %t 2>/dev/null | grep -q idle && break; sleep 0.2
done
sinfo -h -o %t | grep -q idle || fail "the node never became idle (see $T/slurmd.log)"

# The state of a job (the worst over an array's tasks).
state() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | sort -u | cut -d= -f2 | tr '\n' ' '; }
wait_done() { # job, seconds
  local deadline=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    local s; s=$(state "$1")
    case "$s" in *PENDING*|*RUNNING*|*CONFIGURING*|*COMPLETING*|"") sleep 1 ;; *) echo "$s"; return ;; esac
  done
  fail "job $1 did not finish within $2 s (state: $(state "$1"))"
}

# A cut-down quick study: a trained MLP, and an augmented CNN with its adaptation (a run that
# depends on another), 2 seeds each: 6 runs in 4 units over 3 shards.
quick=(--quick --seeds 2 --models mlp,cnn-keras,cnn-keras-adapt-framed)
one="$T/one"; many="$T/many"
echo "cluster-test: the quick study in one process"
start=$(date +%s)
RAYON_NUM_THREADS=1 "$DIGITS" study "${quick[@]}" --data "$DATA" --runs "$one/runs" \
  --results "$one/results" --img "$one/img" >"$T/log/one.log" 2>&1 || fail "one-process study failed: $T/log/one.log"
one_s=$(( $(date +%s) - start ))

echo "cluster-test: the same study as 3 array tasks + gather, task 1 cancelled and resubmitted, shard 0 started twice"
start=$(date +%s)
common=(--cpus-per-task=1 --export=ALL,DIGITS="$DIGITS",DIGITS_DATA_DIR="$DATA")
args=("${quick[@]}" --runs "$many/runs")
# One shard of the 3 submitted alone, as a user resubmits one: shard, log name.
submit_shard() { # shard, log name, sbatch options
  sbatch --parsable "${common[@]}" --array="$1" --output="$T/log/$2.log" "${@:3}" \
    --export=ALL,DIGITS="$DIGITS",DIGITS_DATA_DIR="$DATA",DIGITS_SHARDS=3 \
    docs/cluster/slurm-array.sh "${args[@]}"
}
array=$(sbatch --parsable "${common[@]}" --array=0-2 --output="$T/log/array-%a.log" \
  docs/cluster/slurm-array.sh "${args[@]}")
# Shard 0's twin is held until the array's task 0 is training its first run (a CNN's, long
# next to a task's start), so that the two overlap on that run's lock whatever the scheduler's
# timing; shard 2 (two short MLP runs) could finish before a twin started.
twin=$(submit_shard 0 twin-0 --hold)
jobs+=("$array" "$twin")
wait_for_line() { # file, pattern, what
  for _ in $(seq 600); do grep -q "$2" "$1" 2>/dev/null && return; sleep 0.2; done
  fail "$3 ($1)"
}
wait_for_line "$T/log/array-0.log" "training" "task 0 never started training"
scontrol release "$twin"
# Cancel task 1 once it is training.
wait_for_line "$T/log/array-1.log" "training" "task 1 never started training"
sleep 2
scancel "${array}_1"
again=$(submit_shard 1 again-1)
jobs+=("$again")
# The gather waits for every task (the cancelled one's replacement succeeding in its place).
gather=$(sbatch --parsable "${common[@]}" --output="$T/log/gather.log" \
  --dependency="afterany:$array,afterok:$twin:$again" \
  --wrap "RAYON_NUM_THREADS=1 '$DIGITS' study ${quick[*]} --data '$DATA' --runs '$many/runs' --results '$many/results' --img '$many/img' --only-finished")
jobs+=("$gather")
result=$(wait_done "$gather" 1800)
many_s=$(( $(date +%s) - start ))
[ "$result" = "COMPLETED " ] || fail "the gathering job ended $result (see $T/log/gather.log)"
for j in "$twin" "$again"; do
  s=$(state "$j"); [ "$s" = "COMPLETED " ] || fail "job $j ended $s (logs in $T/log)"
done

# Nothing trained twice: per run folder, one "training" line over the logs of the tasks that
# finished (the cancelled task's work on its run was cut short and is taken up again by its
# replacement, resuming from the checkpoint when it had written one).
dupes=$(cat "$T"/log/array-[02].log "$T"/log/twin-0.log "$T"/log/again-1.log \
  | grep -E '^\[run [0-9]+/[0-9]+\] .*: (training|adapting) ' | grep -v '(resuming)' \
  | sed -E 's/^\[run [0-9]+\/[0-9]+\] ([^:]*):.*/\1/' | sort | uniq -d)
[ -z "$dupes" ] || fail "trained twice: $dupes"
grep -q "is gone: taking it over" "$T/log/again-1.log" \
  || fail "the resubmitted task 1 did not take over the cancelled task's lock ($T/log/again-1.log)"
grep -q "waiting for it" "$T/log/twin-0.log" \
  || fail "shard 0's twin did not wait for task 0's lock ($T/log/twin-0.log)"

# The same bytes as one process, but for the wall-clock times each run records in runs.csv.
n=$(python3 - "$one" "$many" <<'PY'
import csv, io, os, sys
one, many = sys.argv[1:]
def timeless(text):
    rows = list(csv.reader(io.StringIO(text)))
    keep = [i for i, h in enumerate(rows[0]) if h not in ("train_seconds", "adapt_seconds", "predict_seconds")]
    return [[r[i] for i in keep] for r in rows]
count = 0
for sub in ("results", "img"):
    for dirpath, _, files in os.walk(os.path.join(one, sub)):
        for f in files:
            a = os.path.join(dirpath, f)
            b = os.path.join(many, os.path.relpath(a, one))
            if not os.path.exists(b):
                sys.exit(f"cluster-test: {os.path.relpath(b, many)} missing from the sharded study")
            x, y = open(a, "rb").read(), open(b, "rb").read()
            same = timeless(x.decode()) == timeless(y.decode()) if f == "runs.csv" else x == y
            if not same:
                sys.exit(f"cluster-test: {os.path.relpath(a, one)} differs from one process")
            count += 1
print(count)
PY
) || exit 1
echo "cluster-test: quick study: 1 process ${one_s} s; 3 tasks + gather ${many_s} s (with the faults)"
echo "slurm: 3 tasks + gather, results/ identical to one process ($n files)"

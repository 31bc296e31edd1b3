#!/usr/bin/env bash
# Side by side on this machine: a local 3-member etcd cluster (default fsync: every commit) driven
# by etcd's own gRPC benchmark tool (etcd-benchmark, ../shared/etcd-benchmark), and a local 3-node
# data-bridge-kv cluster (--fsync always) driven by kv-bench. All on 127.0.0.1, fresh data
# directories, both clusters up for the whole run. Each round runs every run on A (ours) and then
# on B (etcd), ROUNDS rounds: A B A B..., so drift in the machine's load hits both alike. For every
# run it records the load average before it and the CPU time (utime + stime, /proc) of each server
# process and of the load generator, and at the end prints the tables of docs/BENCHMARKS.md.
#
#   bench/compare-etcd.sh                              # ROUNDS=2, TOTAL=100000, SINGLE_TOTAL=3000
#   ROUNDS=1 TOTAL=20000 SINGLE_TOTAL=1000 bench/compare-etcd.sh
#   OUT=/tmp/results SKIP_BUILD=1 bench/compare-etcd.sh
#
# Needs etcd and etcdctl on PATH (Debian: etcd-server, etcd-client; ../shared/etcd-benchmark/build.sh
# installs them with the tool, which it builds when etcd-benchmark is not on PATH), and free ports
# 2379-2380, 22379-22380, 32379-32380 (etcd), 7101-7103 and 8101-8103 (kv).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-2}
TOTAL=${TOTAL:-100000}
SINGLE_TOTAL=${SINGLE_TOTAL:-3000}
KEY_SPACE=${KEY_SPACE:-10000}
KEY_BYTES=8
VALUE_BYTES=256
# etcd-benchmark's range reads one key: this one, written with a value of VALUE_BYTES.
RANGE_KEY=00000042
WORK=$(mktemp -d /tmp/compare-etcd.XXXXXX)
OUT=${OUT:-$WORK/results}
CLOCK_TICKS=$(getconf CLK_TCK)
mkdir -p "$OUT"
: >"$OUT/runs.tsv"
: >"$OUT/startup.tsv"
SERVER_PIDS=()

cleanup() {
  for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK/etcd" "$WORK/kv"
}
trap cleanup EXIT

if ! command -v etcd-benchmark >/dev/null; then ../shared/etcd-benchmark/build.sh >&2; fi
for tool in etcd etcdctl etcd-benchmark curl; do
  command -v "$tool" >/dev/null || { echo "$tool is not on PATH (see the comment at the top of $0)" >&2; exit 1; }
done
[ "${SKIP_BUILD:-0}" = 1 ] || npm run build >/dev/null

# ---- etcd: 3 members, loopback, default fsync ----
ETCD_CLIENTS=(127.0.0.1:2379 127.0.0.1:22379 127.0.0.1:32379)
ETCD_PEERS=(127.0.0.1:2380 127.0.0.1:22380 127.0.0.1:32380)
ETCD_NAMES=(e1 e2 e3)
ETCD_ENDPOINTS=$(IFS=,; echo "${ETCD_CLIENTS[*]}")
ETCD_CLUSTER="e1=http://127.0.0.1:2380,e2=http://127.0.0.1:22380,e3=http://127.0.0.1:32380"
ETCD_PIDS=()
for index in 0 1 2; do
  name=${ETCD_NAMES[$index]} client=${ETCD_CLIENTS[$index]} peer=${ETCD_PEERS[$index]}
  etcd --name "$name" --data-dir "$WORK/etcd/$name" \
    --listen-client-urls "http://$client" --advertise-client-urls "http://$client" \
    --listen-peer-urls "http://$peer" --initial-advertise-peer-urls "http://$peer" \
    --initial-cluster "$ETCD_CLUSTER" --initial-cluster-token compare-etcd --initial-cluster-state new \
    --logger zap --log-level error >"$OUT/etcd-$name.log" 2>&1 &
  ETCD_PIDS+=($!)
  SERVER_PIDS+=($!)
done

# ---- data-bridge-kv: 3 nodes, loopback, fsync always ----
KV_NAMES=(n1 n2 n3)
KV_PEERS="n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103"
KV_ENDPOINTS="kv://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103"
KV_ADMIN="127.0.0.1:8101,127.0.0.1:8102,127.0.0.1:8103"
KV_PIDS=()
mkdir -p "$WORK/kv"
openssl rand -hex 32 >"$WORK/kv/cluster-secret"
for index in 1 2 3; do
  node dist/bin/kv-node.js --bind "127.0.0.1:710$index" --peers "$KV_PEERS" --data-dir "$WORK/kv/n$index" \
    --admin "127.0.0.1:810$index" --fsync always --log-level warn --cluster-secret-file "$WORK/kv/cluster-secret" >"$OUT/kv-n$index.log" 2>&1 &
  KV_PIDS+=($!)
  SERVER_PIDS+=($!)
done

wait_until() { # what, command...
  local what=$1; shift
  for _ in $(seq 1 150); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "$what did not come up" >&2; exit 1
}
wait_until "etcd" etcdctl --endpoints="$ETCD_ENDPOINTS" endpoint health
wait_until "kv" node dist/bin/kv.js --endpoints "$KV_ENDPOINTS" --timeout 2000 ping

# The member etcd elected: puts go to it, as our client sends ours to our leader (a put through an
# etcd follower would pay a forwarding hop). Asked before every run: leadership may move.
etcd_leader_index() {
  etcdctl --endpoints="$ETCD_ENDPOINTS" endpoint status -w json |
    node -e 'const s=JSON.parse(require("fs").readFileSync(0,"utf8"));const i=s.findIndex(e=>e.Status.leader===e.Status.header.member_id);if(i<0)process.exit(1);process.stdout.write(String(i))'
}

# A node that does not say it leads is counted as a follower (a healthy cluster has no other role).
kv_role() { # admin address -> leader|follower
  if curl -sf "http://$1/status" | grep -q '"role":"leader"'; then echo leader; else echo follower; fi
}

# CPU time of a process so far, in clock ticks: utime + stime of /proc/<pid>/stat (fields 14, 15;
# counted after the command name, which may hold spaces).
cpu_ticks() {
  local stat
  stat=$(</proc/"$1"/stat)
  set -- ${stat##*) }
  echo $((${12} + ${13}))
}

# CPU time of a process's waited-for children, in clock ticks: cutime + cstime (fields 16, 17).
children_cpu_ticks() {
  local stat
  stat=$(</proc/"$1"/stat)
  set -- ${stat##*) }
  echo $((${14} + ${15}))
}

# The servers of a store with their roles, one "role name pid" a line.
servers_of() { # store
  local index
  if [ "$1" = etcd ]; then
    local leader; leader=$(etcd_leader_index)
    for index in 0 1 2; do
      echo "$([ "$index" = "$leader" ] && echo leader || echo follower) etcd-${ETCD_NAMES[$index]} ${ETCD_PIDS[$index]}"
    done
  else
    for index in 0 1 2; do
      echo "$(kv_role "127.0.0.1:810$((index + 1))") kv-${KV_NAMES[$index]} ${KV_PIDS[$index]}"
    done
  fi
}

# Round 0 runs every command with --total 1: what each load generator costs outside its
# requests (loading its code, connecting), which the summary takes off its CPU per request.
ROUND=0
# One measured run: the servers' CPU ticks before and after it, the load generator's from the
# subshell that waits for it (so it is counted to its exit), and a line in runs.tsv (startup.tsv
# in round 0). The tools' stderr (etcd-benchmark's gRPC log) goes to a file beside the output.
measure() { # store run requests generator-name command...
  local store=$1 run=$2 requests=$3 generator_name=$4; shift 4
  local base="r$ROUND-$store-$run" load servers generator role name pid ticks before
  load=$(cut -d' ' -f1 /proc/loadavg)
  servers=$(servers_of "$store")
  [ "$ROUND" = 0 ] || echo "[round $ROUND, load $load] $*" | tee -a "$OUT/commands.log"
  before=$(while read -r role name pid; do echo "$role $name $pid $(cpu_ticks "$pid")"; done <<<"$servers")
  generator=$("$@" >"$OUT/$base.out" 2>"$OUT/$base.err" </dev/null || { echo "failed: $* (see $OUT/$base.err)" >&2; exit 1; }; children_cpu_ticks "$BASHPID")
  while read -r role name pid ticks; do echo "$role $name $ticks $(cpu_ticks "$pid")"; done <<<"$before" >"$OUT/$base.cpu"
  echo "load-generator $generator_name 0 $generator" >>"$OUT/$base.cpu"
  if [ "$ROUND" = 0 ]; then
    printf '%s\t%s\t%s\t%s\n' "$store" "$run" "$requests" "$base.cpu" >>"$OUT/startup.tsv"
  else
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ROUND" "$store" "$run" "$requests" "$load" "$base.out" "$base.cpu" >>"$OUT/runs.tsv"
  fi
}

kv_bench() { # run requests operation args...
  local run=$1 requests=$2; shift 2
  measure kv "$run" "$requests" kv-bench node dist/bin/kv-bench.js "$@" --total "$requests" --key-size "$KEY_BYTES" --val-size "$VALUE_BYTES" \
    --key-space "$KEY_SPACE" --endpoints "$KV_ENDPOINTS" --admin "$KV_ADMIN" --json
}

etcd_bench() { # run requests clients conns command args...
  local run=$1 requests=$2 clients=$3 conns=$4 endpoints=$ETCD_ENDPOINTS; shift 4
  [ "$1" = put ] && endpoints=${ETCD_CLIENTS[$(etcd_leader_index)]}
  # --precise: the default report rounds to 0.1 ms, a tenth of a single-client put.
  measure etcd "$run" "$requests" etcd-benchmark etcd-benchmark --endpoints "$endpoints" --clients "$clients" --conns "$conns" --precise "$@" --total "$requests"
}

dirty=$(git status --porcelain --untracked-files=no | wc -l)
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) cores; $(free -h | awk '/^Mem:/ {print $2}') memory; $(uname -sr); node $(node --version); $(etcd --version | head -1)"
# dist/ is what runs, built from the tree as it is: say whether that is the commit.
echo "commit: $(git rev-parse --short HEAD) ($([ "$dirty" = 0 ] && echo "clean tree" || echo "dirty tree: $dirty tracked files changed"))"
echo "runs: $ROUNDS rounds of A = data-bridge-kv then B = etcd per run; $SINGLE_TOTAL requests with 1 client, $TOTAL with 1000; keys of $KEY_BYTES bytes from $KEY_SPACE, values of $VALUE_BYTES bytes"
echo "results: $OUT (CLK_TCK $CLOCK_TICKS)"

# Both stores hold the whole key space before anything is timed; etcd's range reads RANGE_KEY.
node dist/bin/kv-bench.js put --sequential-keys --total "$KEY_SPACE" --key-space "$KEY_SPACE" --clients 100 --conns 10 \
  --key-size "$KEY_BYTES" --val-size "$VALUE_BYTES" --endpoints "$KV_ENDPOINTS" --json >"$OUT/kv-preload.out"
etcd-benchmark --endpoints "${ETCD_CLIENTS[$(etcd_leader_index)]}" --clients 100 --conns 10 put --sequential-keys \
  --total "$KEY_SPACE" --key-space-size "$KEY_SPACE" --key-size "$KEY_BYTES" --val-size "$VALUE_BYTES" >"$OUT/etcd-preload.out" 2>"$OUT/etcd-preload.err"
etcdctl --endpoints="$ETCD_ENDPOINTS" put "$RANGE_KEY" "$(head -c $((VALUE_BYTES * 3 / 4)) /dev/urandom | base64 -w0)" >/dev/null

# Every run of a round, each on A (ours) and then on B (etcd).
round() { # single-client requests, 1000-client requests
  kv_bench put-1-client "$1" put --clients 1 --conns 1
  etcd_bench put-1-client "$1" 1 1 put --key-size "$KEY_BYTES" --val-size "$VALUE_BYTES" --key-space-size "$KEY_SPACE"
  kv_bench put-1000-clients "$2" put --clients 1000 --conns 100
  etcd_bench put-1000-clients "$2" 1000 100 put --key-size "$KEY_BYTES" --val-size "$VALUE_BYTES" --key-space-size "$KEY_SPACE"
  kv_bench get-linearizable "$2" get --no-preload --consistency linearizable --clients 1000 --conns 100
  etcd_bench get-linearizable "$2" 1000 100 range "$RANGE_KEY" --consistency l
  kv_bench get-serializable "$2" get --no-preload --consistency serializable --clients 1000 --conns 100
  etcd_bench get-serializable "$2" 1000 100 range "$RANGE_KEY" --consistency s
}

round 1 1
for ROUND in $(seq 1 "$ROUNDS"); do round "$SINGLE_TOTAL" "$TOTAL"; done

echo
node dist/bench/etcd/summarize.js "$OUT" "$CLOCK_TICKS" | tee "$OUT/summary.md"

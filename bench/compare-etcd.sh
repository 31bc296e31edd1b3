#!/usr/bin/env bash
# Side-by-side comparison of a local 3-node data-bridge-kv cluster (fsync always) and a local
# 3-member etcd cluster (default fsync), both on loopback on this machine, measured with the same
# tool (kv-bench; its etcd driver uses etcd's v3 HTTP/JSON gateway). Results and the summary table
# go to $OUT (default: a fresh temp directory); see docs/BENCHMARKS.md.
#
#   bench/compare-etcd.sh                 # full runs (TOTAL=100000 requests for the 1000-client runs)
#   TOTAL=20000 bench/compare-etcd.sh     # shorter
#
# Needs etcd and etcdctl on PATH (Debian: apt-get install etcd-server etcd-client) and free ports
# 2379-2380, 22379-22380, 32379-32380 (etcd) and 7101-7103, 8101-8103 (kv).
set -euo pipefail
cd "$(dirname "$0")/.."

TOTAL=${TOTAL:-100000}
SINGLE_TOTAL=${SINGLE_TOTAL:-2000}
KEY_SPACE=${KEY_SPACE:-10000}
WORK=$(mktemp -d /tmp/compare-etcd.XXXXXX)
OUT=${OUT:-$WORK/results}
mkdir -p "$OUT"
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK/etcd" "$WORK/kv"
}
trap cleanup EXIT

[ "${SKIP_BUILD:-0}" = 1 ] || npm run build >/dev/null

# ---- etcd: 3 members, fresh data dirs, loopback, default fsync ----
ETCD_CLUSTER="e1=http://127.0.0.1:2380,e2=http://127.0.0.1:22380,e3=http://127.0.0.1:32380"
ETCD_ENDPOINTS="http://127.0.0.1:2379,http://127.0.0.1:22379,http://127.0.0.1:32379"
for member in "e1 2379 2380" "e2 22379 22380" "e3 32379 32380"; do
  set -- $member
  etcd --name "$1" --data-dir "$WORK/etcd/$1" \
    --listen-client-urls "http://127.0.0.1:$2" --advertise-client-urls "http://127.0.0.1:$2" \
    --listen-peer-urls "http://127.0.0.1:$3" --initial-advertise-peer-urls "http://127.0.0.1:$3" \
    --initial-cluster "$ETCD_CLUSTER" --initial-cluster-token compare-etcd --initial-cluster-state new \
    --logger zap --log-level error >"$WORK/etcd-$1.log" 2>&1 &
  PIDS+=($!)
done

# ---- data-bridge-kv: 3 nodes, fresh data dirs, loopback, fsync always ----
KV_PEERS="n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103"
KV_ENDPOINTS="kv://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103"
mkdir -p "$WORK/kv"
openssl rand -hex 32 >"$WORK/kv/cluster-secret"
for index in 1 2 3; do
  node dist/bin/kv-node.js --bind "127.0.0.1:710$index" --peers "$KV_PEERS" --data-dir "$WORK/kv/n$index" \
    --admin "127.0.0.1:810$index" --fsync always --log-level warn --cluster-secret-file "$WORK/kv/cluster-secret" >"$WORK/kv-n$index.log" 2>&1 &
  PIDS+=($!)
done

wait_until() { # what, command...
  local what=$1; shift
  for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "$what did not come up" >&2; exit 1
}
wait_until "etcd" env ETCDCTL_API=3 etcdctl --endpoints="$ETCD_ENDPOINTS" endpoint health
wait_until "kv" node dist/bin/kv.js --endpoints "$KV_ENDPOINTS" --timeout 2000 ping

# Writes go to etcd's leader, as ours go to our leader: a put through a follower would add a hop.
ETCD_LEADER=$(ETCDCTL_API=3 etcdctl --endpoints="$ETCD_ENDPOINTS" endpoint status -w json |
  node -e 'const s=JSON.parse(require("fs").readFileSync(0,"utf8"));const l=s.find(e=>e.Status.leader===e.Status.header.member_id);process.stdout.write(l.Endpoint)')

echo "machine: $(nproc) cores; $(free -h | awk '/^Mem:/ {print $2}') memory; node $(node --version); $(etcd --version | head -1)"
# dist/ is what runs: say which sources it was built from (uncommitted changes included).
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet -- src bin || echo ' + uncommitted changes in src/ or bin/')" | tee -a "$OUT/commands.log"
echo "etcd leader: $ETCD_LEADER; results in $OUT"

bench() { # run-name target args...
  local run=$1 target=$2; shift 2
  local endpoints=$KV_ENDPOINTS
  if [ "$target" = etcd ]; then endpoints=$ETCD_ENDPOINTS; [ "$1" = put ] && endpoints=$ETCD_LEADER; fi
  echo "[load $(cut -d' ' -f1-3 /proc/loadavg)] kv-bench $* --target $target --endpoints $endpoints --key-space $KEY_SPACE" | tee -a "$OUT/commands.log" >&2
  node dist/bin/kv-bench.js "$@" --target "$target" --endpoints "$endpoints" --key-space "$KEY_SPACE" --json >"$OUT/$target-$run.json"
}

RUNS=(put-1-client put-1000-clients get-linearizable get-serializable)
for target in kv etcd; do
  bench put-1-client "$target" put --clients 1 --conns 1 --total "$SINGLE_TOTAL" --val-size 256
  bench put-1000-clients "$target" put --clients 1000 --conns 100 --total "$TOTAL" --val-size 256
  bench get-linearizable "$target" get --clients 1000 --conns 100 --total "$TOTAL" --val-size 256 --consistency linearizable
  bench get-serializable "$target" get --clients 1000 --conns 100 --total "$TOTAL" --val-size 256 --consistency serializable
done

node dist/bench/etcd/summarize.js "$OUT" "${RUNS[@]}" | tee "$OUT/summary.md"

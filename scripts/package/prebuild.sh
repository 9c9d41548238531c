#!/usr/bin/env bash
# Builds the prebuilt binaries the package ships, where node-gyp-build looks for them:
#
#   prebuilds/linux-x64/wsk-dgram.glibc.node    prebuildify --napi --strip --tag-libc (host g++)
#   prebuilds/linux-arm64/wsk-dgram.glibc.node  the same, cross-built with Debian's
#                                               g++-aarch64-linux-gnu
#   prebuilds/win32-x64/wsk-dgram.napi.node     scripts/windows/build.sh (mingw-w64), the build
#                                               the Wine stage runs, stripped
#
#   bash scripts/package/prebuild.sh             # all three (npm pack runs it: prepack)
#   WSK_PREBUILD_TARGETS=linux-x64 bash scripts/package/prebuild.sh   # only those named
#
# One N-API build per platform serves every Node version with N-API 8 (binding.gyp's
# NAPI_VERSION). The Linux builds run in a copy of the sources under build/prebuild/, so the
# working build/Release (and build/win) are left as they are. A target whose sources are
# unchanged since its last build here (same hash of native/, binding.gyp and this script) is
# not rebuilt. Installs the cross compilers when missing (apt-get, as root).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
targets=${WSK_PREBUILD_TARGETS:-linux-x64 linux-arm64 win32-x64}
work="$root/build/prebuild"
mkdir -p "$work" prebuilds

# Node's headers: the machine's own (/usr/include/node) when there, so node-gyp downloads nothing.
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then
  export npm_config_nodedir=/usr
fi

# Run from `npm pack` (prepack), the npm settings of that call reach us as npm_config_* variables;
# the ones that would send the npm pack inside scripts/windows/build.sh elsewhere (or nowhere)
# must not.
unset npm_config_pack_destination npm_config_dry_run npm_config_json

apt_install() {  # apt_install PACKAGE...: as root only; otherwise say what is missing
  if [ "$(id -u)" != 0 ]; then
    echo "prebuild.sh: install $* (apt-get) first, or leave the target out of WSK_PREBUILD_TARGETS" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

sources_hash() {  # what a prebuild depends on, as one hash
  cat native/*.cc native/*.h native/sources.json binding.gyp scripts/package/prebuild.sh \
      scripts/windows/build.sh package.json | sha256sum | cut -d' ' -f1
}
hash=$(sources_hash)

up_to_date() {  # up_to_date TARGET FILE
  [ -f "$2" ] && [ -f "$work/$1.stamp" ] && [ "$(cat "$work/$1.stamp")" = "$hash" ]
}

# prebuildify in a copy of what a build from source reads (the same files the package ships).
linux_prebuild() {  # linux_prebuild ARCH [CROSS_PREFIX]
  local arch=$1 cross=${2:-} copy="$work/src-$1"
  rm -rf "$copy"
  mkdir -p "$copy/native"
  cp package.json binding.gyp "$copy/"
  cp native/*.cc native/*.h native/sources.json "$copy/native/"
  ln -s "$root/node_modules" "$copy/node_modules"
  local env=()
  if [ -n "$cross" ]; then
    env=(CC="${cross}gcc" CXX="${cross}g++" LINK="${cross}g++" PREBUILD_STRIP_BIN="${cross}strip")
  fi
  (cd "$copy" && env "${env[@]}" "$root/node_modules/.bin/prebuildify" --napi --strip --tag-libc --arch "$arch") \
    >"$work/linux-$arch.log" 2>&1 || { tail -n 30 "$work/linux-$arch.log" >&2; exit 1; }
  rm -rf "prebuilds/linux-$arch"
  cp -r "$copy/prebuilds/linux-$arch" prebuilds/
  rm -rf "$copy"
}

for target in $targets; do
  start=$(date +%s)
  case "$target" in
    linux-x64)
      file=prebuilds/linux-x64/wsk-dgram.glibc.node
      up_to_date "$target" "$file" || linux_prebuild x64
      ;;
    linux-arm64)
      file=prebuilds/linux-arm64/wsk-dgram.glibc.node
      if ! up_to_date "$target" "$file"; then
        command -v aarch64-linux-gnu-g++ >/dev/null || apt_install g++-aarch64-linux-gnu
        linux_prebuild arm64 aarch64-linux-gnu-
      fi
      ;;
    win32-x64)
      file=prebuilds/win32-x64/wsk-dgram.napi.node
      if ! up_to_date "$target" "$file"; then
        # The Windows node.exe is only needed to run the Wine test, not to build.
        WSK_SKIP_NODE_WIN=1 bash scripts/windows/build.sh
        mkdir -p prebuilds/win32-x64
        rm -f prebuilds/win32-x64/*.node
        x86_64-w64-mingw32-strip --strip-unneeded -o "$file" build/win/wsk_dgram.node
      fi
      ;;
    *)
      echo "prebuild.sh: unknown target $target (linux-x64, linux-arm64, win32-x64)" >&2
      exit 1
      ;;
  esac
  echo "$hash" > "$work/$target.stamp"
  echo "prebuild.sh: $file ($(stat -c %s "$file") bytes) in $(( $(date +%s) - start )) s" >&2
done

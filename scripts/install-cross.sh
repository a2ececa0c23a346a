#!/usr/bin/env bash
# Installs what `make dist` needs beyond scripts/install-deps.sh, if missing: Debian's
# aarch64 cross compiler, and the arm64 builds of the C libraries the cgo drivers link
# (libusb for USB scanners, pcsclite for card readers), through multiarch. apt-get as
# root, sudo apt-get otherwise. Safe to run again; does nothing when all is there.
set -euo pipefail

pkgs=(
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross   # cgo for linux/arm64
  libusb-1.0-0-dev:arm64 libpcsclite-dev:arm64  # the drivers' C libraries, arm64
  pkg-config
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $sudo dpkg --add-architecture arm64
fi
echo "install-cross: installing ${missing[*]}"
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

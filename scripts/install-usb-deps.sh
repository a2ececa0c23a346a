#!/usr/bin/env bash
# Installs what the real-USB tests (make test-usb) need on the host, if missing:
# QEMU to run the throw-away guest under TCG, cpio to pack its initramfs, and
# libusb (the runtime library is copied into the guest; the -dev package builds gousb).
# The guest's kernel is not installed here: scripts/usbtest/kernel.sh downloads and
# extracts it into a cache. apt-get as root, sudo apt-get otherwise. Safe to run again.
set -euo pipefail

pkgs=(
  qemu-system-x86   # qemu-system-x86_64, TCG (no KVM needed)
  cpio              # initramfs (newc)
  libusb-1.0-0      # copied into the guest with the test binary
  libusb-1.0-0-dev  # gousb (cgo)
  gcc pkg-config
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-usb-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

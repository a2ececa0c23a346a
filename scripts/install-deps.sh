#!/usr/bin/env bash
# Installs the system packages the build, the tests and the demo need, if missing:
# apt-get as root, sudo apt-get otherwise. Safe to run again.
set -euo pipefail

pkgs=(
  openssl          # independent SM2 implementation the verifier is tested against
  pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools   # real PC/SC stack with virtual cards
  libusb-1.0-0-dev # gousb (cgo)
  gcc pkg-config
  chromium         # the local API's demo page tested in a real browser (chromedp)
  mosquitto        # real MQTT broker the fleet tests run against
  unifont          # glyphs for rendering printed receipts (GBK text) back to PNG
  systemd udev     # systemd-analyze verify of the unit, udevadm checks of the rules
  e2fsprogs mount  # mkfs.ext4 and loop mounts: the full-disk tests on real filesystems
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v go >/dev/null 2>&1; then
  echo "install-deps: Go is not on PATH; install Go 1.26 (https://go.dev/dl) first" >&2
  exit 1
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

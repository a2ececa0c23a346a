#!/usr/bin/env bash
# Prints the directory of an extracted Debian kernel for the USB test guest, fetching it
# first if the cache lacks it: the image package linux-image-amd64 depends on, fetched with
# apt-get download and unpacked with dpkg-deb -x (never installed: the host's kernel and
# package state stay as they are). Cache: $EHC_USBTEST_CACHE, else
# $XDG_CACHE_HOME/ehc-agent/usbtest, else .cache/usbtest in the repository.
# The directory holds boot/vmlinuz-<release> and lib/modules/<release>/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -n "${EHC_USBTEST_CACHE:-}" ]; then cache=$EHC_USBTEST_CACHE
elif [ -n "${XDG_CACHE_HOME:-}" ]; then cache=$XDG_CACHE_HOME/ehc-agent/usbtest
else cache=$root/.cache/usbtest; fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
dep() { apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'; }
pkg=$(dep || true)
if [ -z "$pkg" ]; then
  # A fresh machine may have no package lists yet.
  $sudo apt-get update -qq >&2
  pkg=$(dep)
fi
[ -n "$pkg" ] || { echo "kernel.sh: linux-image-amd64 names no kernel image package" >&2; exit 1; }
ver=$(apt-cache show --no-all-versions "$pkg" | awk '$1 == "Version:" { print $2; exit }')
dir=$cache/${pkg}_${ver}
if [ ! -e "$dir/.complete" ]; then
  rm -rf "$dir" "$dir.tmp"
  mkdir -p "$dir.tmp/deb"
  # apt-get download writes into the working directory, as the _apt user when it can.
  chmod 777 "$dir.tmp/deb"
  (cd "$dir.tmp/deb" && apt-get download -qq "$pkg=$ver" >&2)
  dpkg-deb -x "$dir.tmp/deb/"*.deb "$dir.tmp/root"
  mv "$dir.tmp/root" "$dir"
  rm -rf "$dir.tmp"
  touch "$dir/.complete"
fi
echo "$dir"

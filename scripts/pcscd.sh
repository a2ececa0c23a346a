#!/usr/bin/env bash
# Start or stop a private pcscd with two vpcd readers, for the demo and for trying the
# card commands by hand (the Go tests start their own: drivers/vcard/pcscdtest).
#
#   scripts/pcscd.sh start [PORT]   readers "Virtual PCD 00 00" on PORT and "… 00 01" on
#                                   PORT+1 (default 35963, where `ehc-agent sim card`
#                                   inserts by default)
#   scripts/pcscd.sh stop
#   scripts/pcscd.sh status
#
# pcscd's socket is the machine's (/run/pcscd/pcscd.comm): one pcscd at a time, run as
# root. It runs in the foreground of a background job (`pcscd -f -c DIR`), no systemd.
# Then, for instance:
#   ehc-agent sim card --vpcd 127.0.0.1:35964 --profile configs/profiles/card-psam.yaml &
#   ehc-agent sim card --vpcd 127.0.0.1:35963 --profile configs/profiles/card-rhc.yaml &
#   ehc-agent card read --reader "Virtual PCD 00 00" --psam-reader "Virtual PCD 00 01" \
#       --psam-pin-file <(echo 123456)
set -euo pipefail

dir=${EHC_PCSCD_DIR:-${TMPDIR:-/tmp}/ehc-agent-pcscd}
vpcd_lib=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
pcscd=$(command -v pcscd || echo /usr/sbin/pcscd)

running() { [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

case "${1:-}" in
start)
  port=${2:-35963}
  [ -x "$pcscd" ] && [ -f "$vpcd_lib" ] || { echo "pcscd.sh: pcscd or vpcd missing: bash scripts/install-deps.sh" >&2; exit 1; }
  [ "$(id -u)" -eq 0 ] || { echo "pcscd.sh: pcscd needs root (/run/pcscd); run with sudo" >&2; exit 1; }
  if running; then echo "pcscd.sh: already running (pid $(cat "$dir/pid"))"; exit 0; fi
  if [ -f /run/pcscd/pcscd.pid ] && kill -0 "$(cat /run/pcscd/pcscd.pid)" 2>/dev/null; then
    echo "pcscd.sh: another pcscd is running (pid $(cat /run/pcscd/pcscd.pid)); stop it first (systemctl stop pcscd.socket pcscd)" >&2
    exit 1
  fi
  mkdir -p "$dir/conf"
  # Only reader configuration files may be in the -c directory: pcscd parses them all.
  printf 'FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:0x%04X\nLIBPATH %s\nCHANNELID 0x%04X\n' \
    "$port" "$vpcd_lib" "$port" > "$dir/conf/vpcd"
  "$pcscd" -f -c "$dir/conf" > "$dir/pcscd.log" 2>&1 &
  echo $! > "$dir/pid"
  for _ in $(seq 50); do
    grep -q "daemon ready" "$dir/pcscd.log" 2>/dev/null && break
    running || { cat "$dir/pcscd.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "pcscd.sh: pcscd $(cat "$dir/pid"): \"Virtual PCD 00 00\" on 127.0.0.1:$port, \"Virtual PCD 00 01\" on 127.0.0.1:$((port + 1)); log $dir/pcscd.log"
  ;;
stop)
  if running; then
    pid=$(cat "$dir/pid")
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "pcscd.sh: stopped"
  fi
  rm -f "$dir/pid"
  ;;
status)
  if running; then echo "running (pid $(cat "$dir/pid"))"; else echo "not running"; exit 1; fi
  ;;
*)
  sed -n '2,17p' "$0" >&2
  exit 2
  ;;
esac

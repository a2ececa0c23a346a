#!/usr/bin/env bash
# The demo: a virtual serial scanner (a real pty) fed with a stream of fresh codes —
# valid EHC1 codes, some with defects, an online code, a payment code — the agent
# reading it through its real serial driver and printing one masked line per event,
# and the platform emulator on loopback receiving every event through the outbox.
# For card applications: a virtual GA 467 ID card reader (a fictional resident's card
# placed and lifted in turn) and a virtual receipt printer, both on ptys; the kiosk
# page's "Apply for a card" runs against them, and receipts land in .demo/receipts.
# Ctrl-C stops everything; nothing is left running.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/ehc-agent
mkdir -p .demo
[ -f .demo/keys/anchor.pub ] || "$bin" sim keys --out .demo/keys >/dev/null

pids=()
cleanup() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

# What patients show, one every 2 s: fresh valid EHC1 codes mostly, and now and then a
# code with a defect, today's online health card code, a payment code, junk.
codes() {
  local i=0
  while :; do
    case $((i % 8)) in
      3) "$bin" sim code --keys .demo/keys --defect expired ;;
      5) echo "E1D1C1F0A2B3C4D5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F708192A3BFB18:1" ;;
      6) echo "6225881234567890123" ;;
      7) "$bin" sim code --keys .demo/keys --defect bad-holder-sig ;;
      *) "$bin" sim code --keys .demo/keys ;;
    esac
    i=$((i + 1))
    sleep 2
  done
}

# The scanner and its code stream run as one background pipeline.
codes | "$bin" sim scanner --link .demo/scanner --baud 115200 --codes - >.demo/scanner.log 2>&1 &
pids+=($!)
# The ID card reader: the card lies on it for 30 s, then is lifted for 30 s, so that a
# card read in the last 2 minutes is always there for the apply screen.
"$bin" sim idcard --link .demo/idcard --profile configs/profiles/idcard-wang-zhe.yaml --cycle 30s \
  </dev/null >.demo/idcard.log 2>&1 &
pids+=($!)
# The receipt printer: each receipt kept as .bin and a .png drawing.
"$bin" sim printer --link .demo/printer --save .demo/receipts </dev/null >.demo/printer.log 2>&1 &
pids+=($!)
# The platform emulator: trust documents from the demo keys, events to events.jsonl.
mkdir -p .demo/platform/terminals
# The online code the stream shows belongs to a fictional resident at the emulator.
cat > .demo/platform/codes.json <<'JSON'
{"E1D1C1F0A2B3C4D5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F708192A3BFB18:1":
 {"ehc_id": "A0B1C2D3E4F5061728394A5B6C7D8E9FA0B1C2D3E4F5061728394A5B6C7D8E9F",
  "id_type": "01", "id_number": "110101199001011237", "name": "张三"}}
JSON
"$bin" sim platform --listen 127.0.0.1:17486 --data .demo/platform --trust .demo/keys >.demo/platform.log 2>&1 &
pids+=($!)
for f in scanner idcard printer; do
  for _ in $(seq 50); do [ -e .demo/$f ] && break; sleep 0.1; done
done

echo "demo: virtual scanner at .demo/scanner; events follow (Ctrl-C to stop)"
"$bin" run --config configs/demo.yaml &
agent=$!
pids+=($agent)
# Register the terminal's key at the emulator (a real platform gets it at enrolment);
# the uplink retries until then and loses nothing.
for _ in $(seq 50); do [ -s .demo/state/terminal.key.pub ] && break; sleep 0.1; done
cp .demo/state/terminal.key.pub .demo/platform/terminals/DEMO-01.pub 2>/dev/null || true
for _ in $(seq 50); do [ -s .demo/state/api.token ] && break; sleep 0.1; done
[ -s .demo/state/api.token ] &&
  echo "demo: kiosk page at http://127.0.0.1:17485/demo/#token=$(cat .demo/state/api.token)"
echo "demo: platform emulator at http://127.0.0.1:17486, accepted events in .demo/platform/events.jsonl"
echo "demo: \"Apply for a card\" on the kiosk page uses the virtual ID card reader; receipts in .demo/receipts"
wait "$agent"

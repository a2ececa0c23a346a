#!/bin/sh
# ehc-agent prerm: stop and disable on removal. On upgrade the agent keeps running
# until postinst restarts it on the new binary, so no scan is missed meanwhile.
set -e

if [ "$1" = remove ] && command -v systemctl >/dev/null 2>&1; then
	if [ -d /run/systemd/system ]; then
		systemctl stop ehc-agent.service || true
	fi
	systemctl disable ehc-agent.service >/dev/null 2>&1 || true
fi
exit 0

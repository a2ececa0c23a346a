#!/bin/sh
# ehc-agent postrm. Purge removes the configuration the package created, but keeps
# /var/lib/ehc-agent: its outbox may hold events not yet delivered to the platform, and
# its terminal key is registered there. Delete it by hand once `ehc-agent queue status`
# showed nothing pending. The ehc-agent user stays too (Debian's practice: files it
# owned may remain).
set -e

case "$1" in
remove|purge)
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	if [ -d /run/udev ] && command -v udevadm >/dev/null 2>&1; then
		udevadm control --reload-rules || true
	fi
	;;
esac
if [ "$1" = purge ]; then
	rm -f /etc/ehc-agent/agent.yaml
	rmdir /etc/ehc-agent/trust /etc/ehc-agent 2>/dev/null || true
	if [ -d /var/lib/ehc-agent ]; then
		echo "ehc-agent: kept /var/lib/ehc-agent (outbox, terminal key); remove it by hand when nothing is pending"
	fi
fi
exit 0

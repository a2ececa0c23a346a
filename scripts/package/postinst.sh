#!/bin/sh
# ehc-agent postinst: the service user, its state directory, the live configuration,
# then udev and systemd. Runs again on every upgrade: each step is idempotent.
set -e

if [ "$1" != configure ]; then
	exit 0
fi

# A system user with no login; its home is the state directory, which holds all it owns.
# It joins no device group (dialout, plugdev): the udev rules hand it the scanners only.
if ! getent group ehc-agent >/dev/null; then
	groupadd --system ehc-agent
fi
if ! getent passwd ehc-agent >/dev/null; then
	useradd --system --gid ehc-agent --home-dir /var/lib/ehc-agent --no-create-home \
		--shell /usr/sbin/nologin --comment "EHC terminal agent" ehc-agent
fi
# systemd's StateDirectory= would create it too, but `ehc-agent queue` and doctor run
# before the first start.
install -d -o ehc-agent -g ehc-agent -m 0700 /var/lib/ehc-agent

# The live configuration belongs to the administrator: made from the example on the
# first install only (or if deleted), never changed by an upgrade.
if [ ! -e /etc/ehc-agent/agent.yaml ]; then
	install -o root -g ehc-agent -m 0640 /etc/ehc-agent/agent.example.yaml /etc/ehc-agent/agent.yaml
fi

# Scanners already plugged in get their group and /dev/ehc-scanner-* names now.
if [ -d /run/udev ] && command -v udevadm >/dev/null 2>&1; then
	udevadm control --reload-rules || true
	udevadm trigger --action=change --subsystem-match=tty --subsystem-match=hidraw --subsystem-match=usb || true
fi

if command -v systemctl >/dev/null 2>&1; then
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	if [ -z "$2" ]; then
		# First install: enabled for boot but not started, since it needs the trust
		# anchor and its devices configured first (INSTALL.md).
		systemctl enable ehc-agent.service >/dev/null 2>&1 || true
		echo "ehc-agent: edit /etc/ehc-agent/agent.yaml, put the trust anchor in /etc/ehc-agent/trust/anchor.pub, then: systemctl start ehc-agent"
	elif [ -d /run/systemd/system ]; then
		# Upgrade: the running agent picks up the new binary; a stopped one stays stopped.
		systemctl try-restart ehc-agent.service || true
	fi
fi
exit 0

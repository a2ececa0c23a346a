// Package hints is the one table of plain-language fix hints for the agent's stable
// reason codes (issue #12, "Plain-language states"). /v1/status and its WebSocket
// messages carry each device's and the trust store's reason with its hint, the demo
// kiosk page shows them, and `ehc-agent doctor` prints them after "fix:".
//
// A hint is written for hospital IT standing at the kiosk: one or two short sentences
// that say what to do, naming the command or setting, never a stack of causes. Reasons
// that need no action (connected, start, stopped) have none. The same reason code may
// come from several drivers (not_found from serial and USB): its hint then fits both.
package hints

// Reasons this package adds to those of the drivers and the trust store.
const (
	// APIPortTaken: another program listens on api.listen's port (start and doctor).
	APIPortTaken = "api_port_taken"
	// SlowStorage: the state_dir's disk makes every event wait (the running agent's
	// journal commits, and doctor's timed writes).
	SlowStorage = "slow_storage"
	// StateReset: agent.db was damaged, kept aside as agent.db.corrupt-<time>, and the
	// agent started on a fresh one (agent/daemon, statereset.go).
	StateReset = "state_reset"
)

// table maps a reason code to its hint. Driver and store reasons are written out, not
// imported, so that this stays one readable list; hints_test checks it against the
// constants of the packages that report them.
var table = map[string]string{
	// PC/SC card readers (drivers/pcsc)
	"pcsc_service_unavailable": "The smart-card service is not running. On Linux: sudo systemctl enable --now pcscd.socket " +
		"(apt install pcscd if it is missing); on Windows: start the \"Smart Card\" service (SCardSvr) and set it to Automatic.",
	"no_reader": "The smart-card service runs but sees no card reader with the configured name. Check the reader's USB cable; " +
		"pcsc_scan (Linux) lists the names the service sees: set pcsc.reader to one of them.",
	"service_lost": "The smart-card service stopped or restarted; the agent reconnects by itself. If this stays, restart the service " +
		"(systemctl restart pcscd, or the Windows Smart Card service).",
	"psam_absent":       "No PSAM card in the configured PSAM slot: insert it, or check pcsc.psam_reader.",
	"psam_pin_rejected": "The PSAM refused its PIN and will not be asked again (a few wrong tries lock it): correct pcsc.psam_pin_file, then reinsert the PSAM.",

	// Scanners and serial devices (drivers/serial, drivers/usbhid, drivers/idcard)
	"port_busy": "Another program holds the serial port (named above): close it or stop its service, or move it to another port. " +
		"The agent opens the port by itself once it is free.",
	"keyboard_mode": "The scanner is set to USB keyboard mode. Scan the vendor's HID-POS (or USB-COM) configuration code from its manual, " +
		"or set this device's usb.mode to keyboard to read it as a keyboard wedge.",
	"busy":              "Another program has claimed the USB scanner: close it, then replug the scanner.",
	"permission_denied": "The agent's user may not open the device: add it to the dialout group (serial) or install the udev rule (USB), then replug.",
	"not_found": "The device is not attached, or not at the configured path or USB ids: check the cable; " +
		"ehc-agent doctor lists the ports and USB ids it sees.",
	"no_interface":    "The USB device has no interface of the configured usb.mode: set the scanner to HID-POS with its configuration code, or change usb.mode.",
	"usb_unavailable": "USB cannot be used here (no libusb or usbfs): install libusb-1.0 and run the agent on the machine the scanner is plugged into.",
	"port_closed":     "The device went away (cable pulled or power lost); the agent reconnects as soon as it is back.",
	"unplugged":       "The scanner was unplugged; the agent reconnects as soon as it is back.",
	"no_answer":       "The port opens but the reader does not answer: check its power and the configured baud rate.",

	// Trust store (offline/trust)
	"never_updated": "This terminal has never received a key set, so no health code can be verified offline. " +
		"Check platform.url and the network to the platform, or copy the platform's keyset.json into trust.dir.",
	"stale": "The key set has not been renewed for longer than trust.staleness allows; results carry trust_stale. " +
		"Check the network to the platform so that trust sync can fetch the current one.",

	// Receipt printer (drivers/printer), looked up with ForPrinter
	"paper_out":      "The receipt printer is out of paper: load a new roll and close the cover; receipts not printed meanwhile can be printed again from the kiosk.",
	"paper_near_end": "The receipt printer's paper roll is nearly used up: put a new roll in soon.",
	"printer_offline": "The printer says it is offline: close its cover, clear a paper jam, check its power. " +
		"For a network printer, check its cable and that nothing else holds its port 9100.",
	"printer_not_connected": "The printer is not there: check its cable and power, and printer.path (or vid/pid, address) in the configuration; " +
		"ehc-agent doctor lists the serial ports it sees.",
	"printer_timeout": "The printer connects but does not answer the ESC/POS status query: check printer.baud and that it is an ESC/POS receipt printer.",

	// Storage (the journal in state_dir)
	SlowStorage: "Every scan waits for its event to be written to disk before the kiosk sees it, and this disk is slow: " +
		"put state_dir on the machine's internal SSD rather than an SD card, eMMC or USB stick, and check the disk's health (smartctl -a, dmesg).",
	"disk_full": "The disk that holds state_dir is full. Events are still saved, in the space the agent keeps aside for this, but that runs out: " +
		"free disk space now (old logs: journalctl --vacuum-size=200M; caches; downloads). The agent takes its reserve back by itself once there is room.",
	"journal_failed": "Events cannot be saved to state_dir's disk, so the kiosk is told read_failed and patients must be served at the desk: " +
		"check the disk (dmesg, ehc-agent doctor) and restart the agent.",

	"state_dir_lost": "state_dir (agent.db, outbox.key) was deleted while the agent ran, so scans cannot be saved: do not delete it. " +
		"The agent writes back what it holds and restarts by itself; if this stays, check that state_dir can be created (ehc-agent doctor).",

	StateReset: "agent.db was damaged (power cut, failing SD card) and replaced; events not salvaged are lost and the platform sees a seq gap. " +
		"Check the disk (dmesg, smartctl -a), keep the agent.db.corrupt-* file for analysis, then delete it from state_dir to clear this.",

	// Local API
	APIPortTaken: "Another program listens on the local API's port: stop it, or set api.listen to a free port " +
		"and change the kiosk page's address to match.",
}

// For returns the hint for reason, or "" when it needs none.
func For(reason string) string { return table[reason] }

// ForPrinter returns the hint for a receipt printer's reason (drivers/printer, and
// paper_near_end). The printer's generic codes — offline, not_connected, timeout — are
// kept under "printer_"+reason, so that another device's "offline" cannot get a
// printer's hint.
func ForPrinter(reason string) string {
	switch reason {
	case "", "paper_out", "paper_near_end":
		return table[reason]
	}
	return table["printer_"+reason]
}

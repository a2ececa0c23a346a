package escpos

import "fmt"

// Status requests. DLE EOT is real time: a printer answers it at once, even while it is
// offline or its buffer is full, which is why the driver asks with it; GS r is answered
// in turn, after everything received before it.
var (
	PaperStatusRequest   = []byte{DLE, EOT, 4}  // roll paper sensor status (PRINTERS.md)
	PrinterStatusRequest = []byte{DLE, EOT, 1}  // printer status: online / offline
	PaperSensorRequest   = []byte{GS, 'r', 0x1} // the same paper sensors, in turn
)

// PaperStatus is what the roll paper sensors say.
type PaperStatus struct {
	NearEnd bool // a few metres left
	Out     bool // no paper: nothing may be printed
}

func (s PaperStatus) String() string {
	switch {
	case s.Out:
		return "paper out"
	case s.NearEnd:
		return "paper near end"
	}
	return "paper ok"
}

// StatusError is a reply byte that no status reply can be: bits fixed at 0 (bits 0 and
// 7 of a DLE EOT reply, bits 4 and 7 of a GS r reply) are set. Line noise or a wrong
// baud rate gives these.
type StatusError struct {
	Reply byte
}

func (e StatusError) Error() string {
	return fmt.Sprintf("escpos: %02X is not a status reply", e.Reply)
}

func checkFixed(b, zeros byte) error {
	if b&zeros != 0 {
		return StatusError{b}
	}
	return nil
}

// ParsePaperStatus reads the reply to DLE EOT 4 (PRINTERS.md): bits 2–3 paper near end,
// bits 5–6 paper out. Some printers set only one bit of a pair: either counts.
func ParsePaperStatus(b byte) (PaperStatus, error) {
	if err := checkFixed(b, 0x81); err != nil {
		return PaperStatus{}, err
	}
	return PaperStatus{NearEnd: b&0x0C != 0, Out: b&0x60 != 0}, nil
}

// Byte is the reply to DLE EOT 4 a printer in state s sends (bits 1 and 4 are fixed 1).
func (s PaperStatus) Byte() byte {
	b := byte(0x12)
	if s.NearEnd {
		b |= 0x0C
	}
	if s.Out {
		b |= 0x60
	}
	return b
}

// ParsePaperSensor reads the reply to GS r 1: bits 0–1 paper near end, bits 2–3 paper out.
func ParsePaperSensor(b byte) (PaperStatus, error) {
	if err := checkFixed(b, 0x90); err != nil {
		return PaperStatus{}, err
	}
	return PaperStatus{NearEnd: b&0x03 != 0, Out: b&0x0C != 0}, nil
}

// SensorByte is the reply to GS r 1 a printer in state s sends.
func (s PaperStatus) SensorByte() byte {
	var b byte
	if s.NearEnd {
		b |= 0x03
	}
	if s.Out {
		b |= 0x0C
	}
	return b
}

// PrinterStatus is the reply to DLE EOT 1.
type PrinterStatus struct {
	Offline bool // cover open, paper out, an error, or the feed button held
}

// ParsePrinterStatus reads the reply to DLE EOT 1: bit 3 is offline.
func ParsePrinterStatus(b byte) (PrinterStatus, error) {
	if err := checkFixed(b, 0x81); err != nil {
		return PrinterStatus{}, err
	}
	return PrinterStatus{Offline: b&0x08 != 0}, nil
}

// Byte is the reply to DLE EOT 1 a printer in state s sends.
func (s PrinterStatus) Byte() byte {
	b := byte(0x12)
	if s.Offline {
		b |= 0x08
	}
	return b
}

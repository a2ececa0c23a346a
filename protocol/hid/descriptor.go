package hid

import "strconv"

// Usage pages and usages the drivers look for.
const (
	PageGenericDesktop  = 0x01
	PagePOS             = 0x8C   // "bar code scanner" (HID Point of Sale Usage Tables)
	PageVendorPOS       = 0xFF8C // vendor page some scanners expose beside 0x8C: not the scanner
	UsageKeyboard       = 0x06   // on the generic desktop page
	UsageBarCodeScanner = 0x02   // on the POS page
)

// MaxDescriptor bounds a report descriptor: real ones are a few hundred bytes, and
// GET_DESCRIPTOR cannot return more than this in one control transfer.
const MaxDescriptor = 4096

// Nesting bounds; deeper descriptors are refused rather than tracked.
const (
	maxPush       = 8
	maxCollection = 32
)

// Usage is a usage page and a usage id on it.
type Usage struct {
	Page, ID uint16
}

func (u Usage) String() string {
	return "0x" + strconv.FormatUint(uint64(u.Page), 16) + ":0x" + strconv.FormatUint(uint64(u.ID), 16)
}

// ReportKind is the kind of a report: what a main item declares.
type ReportKind uint8

const (
	Input ReportKind = iota
	Output
	Feature
)

// Descriptor is what the drivers need of a report descriptor.
type Descriptor struct {
	// Collections are the top-level collections in order, each named by its usage.
	Collections []Usage
	// sizes[kind][id] is the report's length in bits, without the report id byte.
	sizes [3]map[uint8]int
	ids   bool // the descriptor declares report ids: every report starts with one
}

// Has reports whether a top-level collection has usage u.
func (d *Descriptor) Has(u Usage) bool {
	for _, c := range d.Collections {
		if c == u {
			return true
		}
	}
	return false
}

// HasPage reports whether a top-level collection is on usage page p.
func (d *Descriptor) HasPage(p uint16) bool {
	for _, c := range d.Collections {
		if c.Page == p {
			return true
		}
	}
	return false
}

// ReportSize is the length in bytes of report id of the given kind as it travels, the
// report id byte included when the descriptor uses report ids; 0 if it is not declared.
func (d *Descriptor) ReportSize(kind ReportKind, id uint8) int {
	if int(kind) >= len(d.sizes) {
		return 0
	}
	bits, ok := d.sizes[kind][id]
	if !ok {
		return 0
	}
	n := (bits + 7) / 8
	if d.ids {
		n++
	}
	return n
}

// DescriptorError is a report descriptor that cannot be read; Offset is the byte where
// the problem starts.
type DescriptorError struct {
	Offset int
	Msg    string
}

func (e *DescriptorError) Error() string {
	return "hid: report descriptor at byte " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// Item types and tags (HID 1.11, 6.2.2).
const (
	typeMain   = 0
	typeGlobal = 1
	typeLocal  = 2

	mainInput      = 0x8
	mainOutput     = 0x9
	mainCollection = 0xA
	mainFeature    = 0xB
	mainEnd        = 0xC

	globalUsagePage   = 0x0
	globalReportSize  = 0x7
	globalReportID    = 0x8
	globalReportCount = 0x9
	globalPush        = 0xA
	globalPop         = 0xB

	localUsage = 0x0

	longItem = 0xFE
)

type globals struct {
	page        uint16
	size, count uint32
	id          uint8
}

// ParseDescriptor reads a report descriptor. Work is linear in len(b), which must be
// at most MaxDescriptor; unknown items are skipped, as the HID specification asks.
func ParseDescriptor(b []byte) (*Descriptor, error) {
	if len(b) > MaxDescriptor {
		return nil, &DescriptorError{MaxDescriptor, strconv.Itoa(len(b)) + " bytes, at most " + strconv.Itoa(MaxDescriptor)}
	}
	d := &Descriptor{}
	for k := range d.sizes {
		d.sizes[k] = map[uint8]int{}
	}
	var (
		g      globals
		stack  []globals
		usages []Usage // local usages since the last main item
		depth  int
	)
	for i := 0; i < len(b); {
		p := b[i]
		if p == longItem {
			// Long items carry vendor data no scanner driver needs: skip them.
			if i+2 >= len(b) {
				return nil, &DescriptorError{i, "long item cut short"}
			}
			i += 3 + int(b[i+1])
			if i > len(b) {
				return nil, &DescriptorError{len(b), "long item cut short"}
			}
			continue
		}
		size := int(p & 3)
		if size == 3 {
			size = 4
		}
		if i+1+size > len(b) {
			return nil, &DescriptorError{i, "item cut short"}
		}
		var v uint32
		for k := size - 1; k >= 0; k-- {
			v = v<<8 | uint32(b[i+1+k])
		}
		off := i
		i += 1 + size
		tag := p >> 4
		switch (p >> 2) & 3 {
		case typeMain:
			switch tag {
			case mainCollection:
				if depth == 0 {
					u := Usage{Page: g.page}
					if len(usages) > 0 {
						u = usages[0]
					}
					d.Collections = append(d.Collections, u)
				}
				depth++
				if depth > maxCollection {
					return nil, &DescriptorError{off, "collections nested deeper than " + strconv.Itoa(maxCollection)}
				}
			case mainEnd:
				if depth == 0 {
					return nil, &DescriptorError{off, "end collection without a collection"}
				}
				depth--
			case mainInput, mainOutput, mainFeature:
				kind := Input
				if tag == mainOutput {
					kind = Output
				} else if tag == mainFeature {
					kind = Feature
				}
				// Sizes are bounded by the descriptor's own length, not by trust in it.
				d.sizes[kind][g.id] += int(min(g.size, 0xFFFF) * min(g.count, 0xFFFF))
			}
			usages = usages[:0]
		case typeGlobal:
			switch tag {
			case globalUsagePage:
				g.page = uint16(v)
			case globalReportSize:
				g.size = v
			case globalReportCount:
				g.count = v
			case globalReportID:
				if v == 0 || v > 0xFF {
					return nil, &DescriptorError{off, "report id " + strconv.FormatUint(uint64(v), 10) + " is outside 1..255"}
				}
				g.id = uint8(v)
				d.ids = true
			case globalPush:
				if len(stack) == maxPush {
					return nil, &DescriptorError{off, "push nested deeper than " + strconv.Itoa(maxPush)}
				}
				stack = append(stack, g)
			case globalPop:
				if len(stack) == 0 {
					return nil, &DescriptorError{off, "pop without push"}
				}
				g, stack = stack[len(stack)-1], stack[:len(stack)-1]
			}
		case typeLocal:
			if tag == localUsage && len(usages) < 8 {
				u := Usage{Page: g.page, ID: uint16(v)}
				if size == 4 {
					// An extended usage names its page in the high half.
					u = Usage{Page: uint16(v >> 16), ID: uint16(v)}
				}
				usages = append(usages, u)
			}
		}
	}
	if depth != 0 {
		return nil, &DescriptorError{len(b), "collection not ended"}
	}
	return d, nil
}

package vscanner

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/ehc-agent/ehc-agent/protocol/ssi"
)

// The scanner side of Zebra SSI (SCANNERS.md, "Zebra SSI"). Packets are laid out by
// protocol/ssi; how a scan is cut into packets and segments is written here from the
// spec, and checked byte for byte against the spec's vector from a real scanner.

// stSingle: real scanners set 0x20 on every single-packet DECODE_DATA, and a host must
// ignore it, so the simulator sets it too.
const stSingle = 0x20

// ssiFrame is one packet or multipacket segment, with the opcode that acknowledges it.
type ssiFrame struct {
	pkt ssi.Packet
	ack byte
}

// encode returns the wire form, with the retransmit bit and a wrong checksum if asked.
func (f ssiFrame) encode(retransmit, corrupt bool) []byte {
	p := f.pkt
	if retransmit {
		p.Status |= ssi.StatusRetransmit
	}
	b, err := p.MarshalBinary()
	if err != nil {
		panic(err) // ssiFrames never makes a packet over ssi.MaxData
	}
	if corrupt {
		b[len(b)-1] ^= 0x01
	}
	return b
}

// ssiFrames splits a scan into what goes on the wire: one DECODE_DATA packet when it
// fits (barcode type + 250 bytes), else multipacket segments or, with continuation,
// DECODE_DATA packets chained by the continuation bit, each led by the barcode type.
func ssiFrames(payload []byte, sym byte, continuation bool) []ssiFrame {
	const perPacket = ssi.MaxData - 1
	decode := func(status byte, data []byte) ssiFrame {
		return ssiFrame{ssi.Packet{Opcode: ssi.OpDecodeData, Source: ssi.SourceScanner, Status: status, Data: append([]byte{sym}, data...)}, ssi.OpAck}
	}
	segment := func(source byte, data []byte) ssiFrame {
		return ssiFrame{ssi.Packet{Opcode: ssi.OpMultipacket, Source: source, Data: data}, ssi.OpMultipacketAck}
	}
	if len(payload) <= perPacket {
		return []ssiFrame{decode(stSingle, payload)}
	}
	var fs []ssiFrame
	if continuation {
		for len(payload) > 0 {
			n := min(perPacket, len(payload))
			st := byte(0)
			if n < len(payload) {
				st = ssi.StatusContinuation
			}
			fs = append(fs, decode(st, payload[:n]))
			payload = payload[n:]
		}
		return fs
	}
	// Multipacket: byte 4 is the segment index; the first segment carries an embedded
	// DECODE_DATA header with the barcode type at byte 10 and the total length at bytes
	// 12-13. The other header bytes (source 02, 00 00 01 F7 = total+3, 01) copy the
	// spec's vector from a real scanner; a host reads only the documented ones.
	total := len(payload)
	first := []byte{0x00, ssi.OpDecodeData, 0, 0, 0, 0, sym, 0x01, 0, 0}
	binary.BigEndian.PutUint32(first[2:6], uint32(total+3))
	binary.BigEndian.PutUint16(first[8:10], uint16(total))
	n := min(ssi.MaxData-len(first), total)
	fs = append(fs, segment(0x02, append(first, payload[:n]...)))
	payload = payload[n:]
	for idx := 1; len(payload) > 0; idx++ {
		n := min(ssi.MaxData-1, len(payload))
		fs = append(fs, segment(ssi.SourceScanner, append([]byte{byte(idx)}, payload[:n]...)))
		payload = payload[n:]
	}
	return fs
}

func (s *Scanner) sendSSI(ctx context.Context, payload []byte, o sendOpts) error {
	retries := max(s.cfg.Retries, 0)
	for i, f := range ssiFrames(payload, s.cfg.Symbology, s.cfg.Continuation) {
		for attempt := 0; ; attempt++ {
			corrupt := attempt == 0 && slices.Contains(o.bad, i)
			s.drainAcks()
			if err := s.pace.write(ctx, s.write, f.encode(attempt > 0, corrupt)); err != nil {
				return err
			}
			s.packets.Add(1)
			if attempt > 0 {
				s.retransmits.Add(1)
			}
			acked, err := s.awaitAck(ctx, f.ack)
			if err != nil {
				return err
			}
			if acked {
				break
			}
			if attempt >= retries {
				return ErrNoAck
			}
		}
	}
	return nil
}

// drainAcks forgets answers to earlier packets, so that a late ACK is not taken for
// the answer to the packet about to be sent.
func (s *Scanner) drainAcks() {
	for {
		select {
		case <-s.acks:
		default:
			return
		}
	}
}

// awaitAck waits for the host to answer the packet just written: true on the expected
// ACK, false on a NAK or a timeout (counted from when the packet is on the wire).
func (s *Scanner) awaitAck(ctx context.Context, want byte) (bool, error) {
	t := time.NewTimer(s.pace.untilFree() + s.cfg.AckTimeout)
	defer t.Stop()
	for {
		select {
		case op := <-s.acks:
			switch op {
			case want:
				return true, nil
			case ssi.OpNak:
				s.naks.Add(1)
				return false, nil
			}
		case <-t.C:
			s.timeouts.Add(1)
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// parseHostSSI takes complete, valid host packets off the front of b and hands them to
// a waiting sender; it returns the bytes still incomplete. Bytes that cannot start a
// host packet (trigger commands of another protocol, noise) are skipped one by one.
func (s *Scanner) parseHostSSI(b []byte) []byte {
	for len(b) > 0 {
		if b[0] < ssi.MinLen || (len(b) > 2 && b[2] != ssi.SourceHost) {
			b = b[1:]
			continue
		}
		p, n, err := ssi.Parse(b)
		if errors.Is(err, ssi.ErrShort) {
			break
		}
		if err != nil {
			b = b[1:]
			continue
		}
		select {
		case s.acks <- p.Opcode:
		default: // nobody is waiting for this many answers: they are stale
		}
		b = b[n:]
	}
	return b
}

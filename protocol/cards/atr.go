package cards

import "fmt"

// ATRError says where an ATR stops making sense: Offset is the byte that is missing or
// wrong.
type ATRError struct {
	Offset int
	What   string
}

func (e *ATRError) Error() string { return fmt.Sprintf("cards: ATR byte %d: %s", e.Offset, e.What) }

// HistoricalBytes returns the historical bytes of an ATR (ISO/IEC 7816-3, 8.2): after
// TS and T0, the interface bytes TAi TBi TCi TDi that each Y nibble announces (T0's
// high nibble, then each TDi's), then the K historical bytes T0's low nibble counts.
// The national social-security reader interface reports them as the card's "reset
// information" (CARDS.md: 13 bytes on real cards, `00 81 54 4C …` after `3B 6D 00 00`).
//
// The check byte TCK, present when a TDi names a protocol other than T=0, is not
// verified: it follows the historical bytes, which are whole without it, and cards get
// it wrong often enough that readers pass such ATRs on. The result aliases atr.
func HistoricalBytes(atr []byte) ([]byte, error) {
	if len(atr) < 2 {
		return nil, &ATRError{Offset: len(atr), What: "too short: no T0"}
	}
	if atr[0] != 0x3B && atr[0] != 0x3F {
		return nil, &ATRError{Offset: 0, What: fmt.Sprintf("TS %02X is neither 3B nor 3F", atr[0])}
	}
	k := int(atr[1] & 0x0F)
	y := atr[1] >> 4
	i := 2
	// Each TDi announces the next group; an ATR is at most 33 bytes, so a chain that
	// does not end runs out of bytes and stops there.
	for {
		for bit := byte(1); bit < 8; bit <<= 1 { // TAi, TBi, TCi
			if y&bit != 0 {
				i++
			}
		}
		if i > len(atr) {
			return nil, &ATRError{Offset: len(atr), What: "missing interface bytes"}
		}
		if y&8 == 0 {
			break
		}
		if i == len(atr) {
			return nil, &ATRError{Offset: i, What: "missing interface byte TD"}
		}
		y = atr[i] >> 4
		i++
	}
	if i+k > len(atr) {
		return nil, &ATRError{Offset: len(atr), What: fmt.Sprintf("%d historical bytes announced, %d there", k, len(atr)-i)}
	}
	return atr[i : i+k], nil
}

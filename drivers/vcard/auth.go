package vcard

import (
	"github.com/emmansun/gmsm/sm4"
)

// sessionKey is the stand-in key derivation shared by the virtual PSAM and card: the
// card key diversified by card ‖ city diversifiers, then by the challenge.
func sessionKey(key, cardDiv, cityDiv, challenge []byte) []byte {
	cardKey := sm4Encrypt(key, append(append(make([]byte, 0, 16), cardDiv...), cityDiv...))
	block := make([]byte, 16)
	copy(block, challenge)
	for i := range 8 {
		block[8+i] = ^challenge[i]
	}
	return sm4Encrypt(cardKey, block)
}

// cryptogram is what the agent computes from the PSAM's 80 FA answer: the halves of the
// encrypted block XORed (CARDS.md, step 3).
func cryptogram(session, block []byte) []byte {
	e := sm4Encrypt(session, block)
	t := make([]byte, 8)
	for i := range t {
		t[i] = e[i] ^ e[i+8]
	}
	return t
}

// sm4Encrypt encrypts one 16-byte block with a 16-byte key.
func sm4Encrypt(key, block []byte) []byte {
	c, err := sm4.NewCipher(key)
	if err != nil {
		panic(err) // keys are checked to be 16 bytes when a profile is built
	}
	out := make([]byte, 16)
	c.Encrypt(out, block)
	return out
}

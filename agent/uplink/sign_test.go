package uplink

import (
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm2"

	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// The worked example of PLATFORM.md, Authentication, verbatim.
const (
	exD      = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
	exPub    = "04 09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020 CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
	exBody   = `{"events":[]}`
	exTS     = 1764028800
	exNonce  = "0011223344556677"
	exSigned = "POST\n/api/v1/events\n1764028800\n0011223344556677\nc0ad0dccbf9db8a9a4c75bf22706d8c00d357d851ffa56a67ec13ecc9ca11e25"
	exK      = "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21"
	exR      = "AA124DCC1D042D1EE588CD50069FADB8EDA6FEA8A26B56250119D00EEB042034"
	exS      = "3EEF000D5F6A5B5F3F228E15952D13DBF794F613DAA154CC1BC0FAE6097E04EF"
	exSig    = "qhJNzB0ELR7liM1QBp+tuO2m/qiia1YlARnQDusEIDQ+7wANX2pbXz8ijhWVLRPb95T2E9qhVMwbwPrmCX4E7w=="
)

func TestEmptyBodyHash(t *testing.T) {
	if got := BodyHash(nil); got != EmptyBodyHash {
		t.Fatalf("SM3('') = %s", got)
	}
	if !strings.HasPrefix(EmptyBodyHash, "1ab21d83") || !strings.HasSuffix(EmptyBodyHash, "5082aa2b") {
		t.Fatal("EmptyBodyHash does not match the spec's abbreviation")
	}
}

func TestWorkedExampleSignedString(t *testing.T) {
	got := SignedString("POST", "/api/v1/events", "", exTS, exNonce, []byte(exBody))
	if got != exSigned {
		t.Fatalf("signed string:\n%q\nwant\n%q", got, exSigned)
	}
	// A query is part of the path line only when it is not empty.
	q := SignedString("GET", "/api/v1/trust/revocations", "since=12", exTS, exNonce, nil)
	if want := "GET\n/api/v1/trust/revocations?since=12\n1764028800\n0011223344556677\n" + EmptyBodyHash; q != want {
		t.Fatalf("with query:\n%q\nwant\n%q", q, want)
	}
}

// signWithK is SM2 signing (GB/T 32918.2 §6.1) with a caller-chosen k, written out with
// big integers: gmsm only signs with a hedged or RFC 6979 nonce, so this is how the
// spec's r and s can be reproduced from its k. Test-only: a fixed k leaks the key.
func signWithK(t *testing.T, d *sm2.PrivateKey, msg []byte, kHex string) []byte {
	t.Helper()
	c := sm2.P256()
	n := c.Params().N
	e := sm2sig.Public(d).Digest(msg)
	k, _ := new(big.Int).SetString(kHex, 16)
	x1, _ := c.ScalarBaseMult(k.FillBytes(make([]byte, 32)))
	r := new(big.Int).Add(new(big.Int).SetBytes(e[:]), x1)
	r.Mod(r, n)
	// s = (1 + d)^-1 · (k − r·d) mod n
	inv := new(big.Int).ModInverse(new(big.Int).Add(d.D, big.NewInt(1)), n)
	s := new(big.Int).Sub(k, new(big.Int).Mul(r, d.D))
	s.Mul(s, inv)
	s.Mod(s, n)
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out
}

func TestWorkedExampleSignature(t *testing.T) {
	d, err := sm2sig.ParsePrivateKey([]byte(exD))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sm2sig.ParsePublicKeyHex(exPub)
	if err != nil {
		t.Fatal(err)
	}
	if !sm2sig.Public(d).Equal(pub) {
		t.Fatalf("d's public key is %s, the spec says %s", sm2sig.Public(d).Hex(), pub.Hex())
	}
	rs := signWithK(t, d, []byte(exSigned), exK)
	if got := strings.ToUpper(hex.EncodeToString(rs)); got != exR+exS {
		t.Fatalf("r‖s with the spec's k:\n%s\nwant\n%s", got, exR+exS)
	}
	if got := base64.StdEncoding.EncodeToString(rs); got != exSig {
		t.Fatalf("sig = %s, want %s", got, exSig)
	}
	if !pub.Verify([]byte(exSigned), rs) {
		t.Fatal("the spec's signature does not verify")
	}
	want := "EHC-SM2 terminal=K-0001,ts=1764028800,nonce=0011223344556677,sig=" + exSig
	if got := Authorization("K-0001", exTS, exNonce, rs); got != want {
		t.Fatalf("header:\n%s\nwant\n%s", got, want)
	}
	// One changed byte of the signed string and the same signature fails.
	if pub.Verify([]byte(strings.Replace(exSigned, "1764028800", "1764028801", 1)), rs) {
		t.Fatal("signature verifies over another ts")
	}
}

func TestSignFreshNonceEachCall(t *testing.T) {
	d, _ := sm2sig.ParsePrivateKey([]byte(exD))
	a, err := Sign(d, "K-0001", "POST", "/api/v1/events", "", exTS, []byte(exBody))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Sign(d, "K-0001", "POST", "/api/v1/events", "", exTS, []byte(exBody))
	if a == b {
		t.Fatal("two signatures of one request are identical: nonce not fresh")
	}
	// The header parses back and verifies over the signed string with its nonce.
	nonce := a[strings.Index(a, "nonce=")+6 : strings.Index(a, ",sig=")]
	sig, err := base64.StdEncoding.DecodeString(a[strings.Index(a, "sig=")+4:])
	if err != nil {
		t.Fatal(err)
	}
	if len(nonce) != 16 || strings.ToLower(nonce) != nonce {
		t.Fatalf("nonce %q is not 16 lowercase hex digits", nonce)
	}
	if !sm2sig.Public(d).Verify([]byte(SignedString("POST", "/api/v1/events", "", exTS, nonce, []byte(exBody))), sig) {
		t.Fatal("Sign's header does not verify")
	}
}

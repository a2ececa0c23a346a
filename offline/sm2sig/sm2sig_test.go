package sm2sig

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
)

// The worked example of PLATFORM.md, Authentication.
const (
	exD      = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
	exPub    = "04 09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020\n  CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
	exSigned = "POST\n/api/v1/events\n1764028800\n0011223344556677\nc0ad0dccbf9db8a9a4c75bf22706d8c00d357d851ffa56a67ec13ecc9ca11e25"
	exR      = "AA124DCC1D042D1EE588CD50069FADB8EDA6FEA8A26B56250119D00EEB042034"
	exS      = "3EEF000D5F6A5B5F3F228E15952D13DBF794F613DAA154CC1BC0FAE6097E04EF"
	exSigB64 = "qhJNzB0ELR7liM1QBp+tuO2m/qiia1YlARnQDusEIDQ+7wANX2pbXz8ijhWVLRPb95T2E9qhVMwbwPrmCX4E7w=="
	exOrder  = "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWorkedExample(t *testing.T) {
	pub, err := ParsePublicKeyHex(exPub)
	if err != nil {
		t.Fatal(err)
	}
	// The body hash inside the signed string is SM3(`{"events":[]}`).
	if h := sm3.Sum([]byte(`{"events":[]}`)); !strings.HasSuffix(exSigned, hex.EncodeToString(h[:])) {
		t.Fatalf("SM3 of the body is %x, not the one in the signed string", h)
	}
	rs := append(mustHex(t, exR), mustHex(t, exS)...)
	if got := base64.StdEncoding.EncodeToString(rs); got != exSigB64 {
		t.Fatalf("base64(r‖s) = %s, want %s", got, exSigB64)
	}
	if !Verify(pub, []byte(exSigned), rs) {
		t.Fatal("the worked example's signature does not verify")
	}
	// Any change to message or signature must fail.
	if Verify(pub, []byte(exSigned+"\n"), rs) {
		t.Fatal("verified a different message")
	}
	bad := bytes.Clone(rs)
	bad[63] ^= 1
	if Verify(pub, []byte(exSigned), bad) {
		t.Fatal("verified a modified s")
	}

	priv, err := ParsePrivateKey([]byte(exD))
	if err != nil {
		t.Fatal(err)
	}
	if !Public(priv).Equal(pub) {
		t.Fatalf("public key of d is %s, want the example's", Public(priv).Hex())
	}
	sig, err := Sign(priv, []byte(exSigned))
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != SignatureSize || !Verify(pub, []byte(exSigned), sig) {
		t.Fatalf("own signature %x does not verify", sig)
	}
	// gmsm's own verifier, with its own Z computation, must agree.
	der, err := RawToDER(sig)
	if err != nil {
		t.Fatal(err)
	}
	if !sm2.VerifyASN1WithSM2(pub.ECDSA(), nil, []byte(exSigned), der) {
		t.Fatal("gmsm rejects our signature")
	}
}

// The precomputed Z must equal gmsm's for the default ID, else every signature is
// bound to a different message.
func TestDigestMatchesGMSM(t *testing.T) {
	priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := Public(priv)
	msg := []byte("some message")
	want, err := sm2.CalculateSM2Hash(pub.ECDSA(), msg, []byte(DefaultUID))
	if err != nil {
		t.Fatal(err)
	}
	if got := pub.Digest(msg); !bytes.Equal(got[:], want) {
		t.Fatalf("digest %x, gmsm %x", got, want)
	}
}

func TestScalarRange(t *testing.T) {
	pub, err := ParsePublicKeyHex(exPub)
	if err != nil {
		t.Fatal(err)
	}
	r, s := mustHex(t, exR), mustHex(t, exS)
	n := mustHex(t, exOrder)
	zero := make([]byte, 32)
	// s + n is s modulo n: a verifier that reduces instead of rejecting would accept
	// it, but it does not fit 32 bytes; n itself and 0 do and must be rejected.
	for _, c := range []struct {
		name    string
		rs      []byte
		inRange bool // a well-formed r ‖ s that merely does not verify
	}{
		{"r=0", append(bytes.Clone(zero), s...), false},
		{"s=0", append(bytes.Clone(r), zero...), false},
		{"r=n", append(bytes.Clone(n), s...), false},
		{"s=n", append(bytes.Clone(r), n...), false},
		{"r=ff..ff", append(bytes.Repeat([]byte{0xff}, 32), s...), false},
		{"63 bytes", append(bytes.Clone(r), s[:31]...), false},
		{"65 bytes", append(append(bytes.Clone(r), s...), 0), false},
		{"empty", nil, false},
		{"s only", bytes.Clone(s), false},
		{"all zero", make([]byte, 64), false},
		{"swapped", append(bytes.Clone(s), r...), true},
		{"r=1 s=n-1", append(append(make([]byte, 31), 1), sub1(n)...), true},
	} {
		if Verify(pub, []byte(exSigned), c.rs) {
			t.Errorf("%s: verified", c.name)
		}
		if _, err := RawToDER(c.rs); (err == nil) != c.inRange {
			t.Errorf("%s: RawToDER err = %v", c.name, err)
		}
	}
	var nilKey *PublicKey
	if nilKey.Verify([]byte("x"), append(r, s...)) {
		t.Fatal("nil key verified")
	}
}

func sub1(n []byte) []byte {
	m := bytes.Clone(n)
	for i := len(m) - 1; i >= 0; i-- {
		if m[i] > 0 {
			m[i]--
			break
		}
		m[i] = 0xff
	}
	return m
}

func TestDERRoundTrip(t *testing.T) {
	priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	// Enough signatures that some have r or s with a high bit set or a leading zero byte.
	for i := range 200 {
		msg := []byte(fmt.Sprint("m", i))
		der, err := priv.Sign(nil, msg, sm2.DefaultSM2SignerOpts)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := DERToRaw(der)
		if err != nil {
			t.Fatal(err)
		}
		back, err := RawToDER(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, der) {
			t.Fatalf("DER %x → raw → %x", der, back)
		}
		if !Public(priv).Verify(msg, raw) {
			t.Fatalf("signature %d does not verify", i)
		}
	}
	for _, bad := range []string{"", "3000", "300602010102010100", "3006020100020101", "30060201ff020101", "3007020101020101" + "00"} {
		if _, err := DERToRaw(mustHex(t, bad)); err == nil {
			t.Errorf("DERToRaw(%s) accepted", bad)
		}
	}
}

func TestKeyEncodings(t *testing.T) {
	priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := Public(priv)
	raw := pub.Bytes()
	c := pub.Compressed()
	fromC, err := NewPublicKey(c[:])
	if err != nil {
		t.Fatal(err)
	}
	if !fromC.Equal(pub) {
		t.Fatal("compressed round trip changed the key")
	}
	if c2 := fromC.Compressed(); c2 != c {
		t.Fatal("compressed encoding not stable")
	}
	lower, err := ParsePublicKeyHex(strings.ToLower(pub.Hex()))
	if err != nil || !lower.Equal(pub) {
		t.Fatalf("lowercase hex: %v", err)
	}
	p, err := pub.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	fromPEM, err := ParsePublicKeyText(p)
	if err != nil || !fromPEM.Equal(pub) {
		t.Fatalf("PEM round trip: %v", err)
	}
	fromText, err := ParsePublicKeyText([]byte("  " + pub.Hex() + "\n"))
	if err != nil || !fromText.Equal(pub) {
		t.Fatalf("hex text: %v", err)
	}

	kp, err := MarshalPrivateKeyPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePrivateKey(kp)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equal(priv) {
		t.Fatal("private key PEM round trip changed the key")
	}

	// Off-curve and malformed keys all fail with ErrBadKey.
	offCurve := raw
	offCurve[64] ^= 1
	flipped := c
	flipped[0] ^= 1 // the other y: still on the curve, a different key
	other, err := NewPublicKey(flipped[:])
	if err != nil || other.Equal(pub) {
		t.Fatalf("the point with the other y: %v", err)
	}
	noRoot := OffCurveCompressed()
	for name, b := range map[string][]byte{
		"off curve":       offCurve[:],
		"x has no y":      noRoot[:],
		"x = p":           append([]byte{2}, mustHex(t, "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF")...),
		"prefix 05":       append([]byte{5}, c[1:]...),
		"prefix 04 short": append([]byte{4}, c[1:]...),
		"infinity":        {0},
		"empty":           nil,
		"hybrid 06":       append([]byte{6}, raw[1:]...),
		"uncompressed +1": append(raw[:], 0),
		"all zero 65":     make([]byte, 65),
	} {
		if _, err := NewPublicKey(b); !errors.Is(err, ErrBadKey) {
			t.Errorf("%s: err = %v, want ErrBadKey", name, err)
		}
	}
	for _, s := range []string{"", "04", strings.Repeat("0", 130), pub.Hex()[:128], pub.Hex() + "00", "zz" + pub.Hex()[2:]} {
		if _, err := ParsePublicKeyHex(s); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePublicKeyHex(%.20q…) err = %v, want ErrBadKey", s, err)
		}
	}
	if _, err := ParsePublicKeyText([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")); !errors.Is(err, ErrBadKey) {
		t.Errorf("PEM of the wrong type: %v", err)
	}
}

// OffCurveCompressed must really be an x with no point, for the bad_key tests built on it.
func TestOffCurveCompressed(t *testing.T) {
	x := OffCurveCompressed()
	for _, p := range []byte{2, 3} {
		x[0] = p
		if _, err := NewPublicKey(x[:]); !errors.Is(err, ErrBadKey) {
			t.Fatalf("prefix %d: %v", p, err)
		}
	}
}

// TestOpenSSLInterop signs with OpenSSL 3 (an independent SM2 implementation) and
// verifies with this package, and the other way round. Under CI=true a missing or
// SM2-less openssl fails the test: the interop claim must not silently go unchecked.
func TestOpenSSLInterop(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err == nil {
		if out, e := exec.Command(openssl, "genpkey", "-algorithm", "SM2", "-out", filepath.Join(t.TempDir(), "probe.pem")).CombinedOutput(); e != nil {
			err = fmt.Errorf("openssl has no SM2: %v: %s", e, out)
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true requires openssl with SM2: %v", err)
		}
		t.Skipf("skipping OpenSSL interop: %v", err)
	}
	dir := t.TempDir()
	run := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(openssl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	keyPath, pubPath := filepath.Join(dir, "k.pem"), filepath.Join(dir, "pub.pem")
	run("genpkey", "-algorithm", "SM2", "-out", keyPath)
	run("pkey", "-in", keyPath, "-pubout", "-out", pubPath)
	pemPub, err := os.ReadFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKeyText(pemPub)
	if err != nil {
		t.Fatalf("OpenSSL's PUBLIC KEY: %v", err)
	}
	pemKey, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ParsePrivateKey(pemKey)
	if err != nil {
		t.Fatalf("OpenSSL's PRIVATE KEY: %v", err)
	}
	if !Public(priv).Equal(pub) {
		t.Fatal("OpenSSL's private and public key files disagree once parsed")
	}

	for i, msg := range []string{"", "EHC1 signed bytes", strings.Repeat("x", 1000), exSigned} {
		msgPath, sigPath := filepath.Join(dir, "m"), filepath.Join(dir, "sig.der")
		if err := os.WriteFile(msgPath, []byte(msg), 0o600); err != nil {
			t.Fatal(err)
		}
		// Two OpenSSL signing paths: pkeyutl on the raw input, and dgst.
		if i%2 == 0 {
			run("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-pkeyopt", "distid:"+DefaultUID,
				"-inkey", keyPath, "-in", msgPath, "-out", sigPath)
		} else {
			run("dgst", "-sm3", "-sign", keyPath, "-sigopt", "distid:"+DefaultUID, "-out", sigPath, msgPath)
		}
		der, err := os.ReadFile(sigPath)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := DERToRaw(der)
		if err != nil {
			t.Fatalf("OpenSSL signature %x: %v", der, err)
		}
		if !pub.Verify([]byte(msg), rs) {
			t.Fatalf("message %d: OpenSSL's signature does not verify here", i)
		}
		if pub.Verify([]byte(msg+"!"), rs) {
			t.Fatalf("message %d: OpenSSL's signature verifies another message", i)
		}

		// And ours verifies in OpenSSL.
		own, err := Sign(priv, []byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		ownDER, err := RawToDER(own)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(sigPath, ownDER, 0o600); err != nil {
			t.Fatal(err)
		}
		out := run("pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pkeyopt", "distid:"+DefaultUID,
			"-pubin", "-inkey", pubPath, "-in", msgPath, "-sigfile", sigPath)
		if !bytes.Contains(out, []byte("Verified Successfully")) {
			t.Fatalf("OpenSSL: %s", out)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	pub, err := ParsePublicKeyHex(exPub)
	if err != nil {
		b.Fatal(err)
	}
	rs := append(mustHex(b, exR), mustHex(b, exS)...)
	msg := []byte(exSigned)
	b.ReportAllocs()
	for b.Loop() {
		if !pub.Verify(msg, rs) {
			b.Fatal("does not verify")
		}
	}
}

func BenchmarkParseCompressed(b *testing.B) {
	pub, err := ParsePublicKeyHex(exPub)
	if err != nil {
		b.Fatal(err)
	}
	c := pub.Compressed()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewPublicKey(c[:]); err != nil {
			b.Fatal(err)
		}
	}
}

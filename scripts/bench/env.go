// Package bench measures the agent's SM2 and EHC1 verification side by side with what an
// integrator would otherwise pick: tjfoc/gmsm (the older Go library) and Debian's OpenSSL 3
// (see cmd/sidebyside). It is its own Go module so that the agent's module never depends
// on tjfoc/gmsm; the agent's packages come from this work tree (replace ../..).
//
// Every operation is defined once, as an Op, and used three ways: as a Go benchmark
// (go test -bench), by cmd/sidebyside (repeated runs, min/median, ratios against the
// goals), and counted in instructions under valgrind (cmd/sidebyside -count), which a
// loaded machine does not blur.
package bench

import (
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/emmansun/gmsm/sm2"
	tjsm2 "github.com/tjfoc/gmsm/sm2"

	"github.com/ehc-agent/ehc-agent/offline/issuer"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/offline/trust"
	"github.com/ehc-agent/ehc-agent/offline/verify"
	"github.com/ehc-agent/ehc-agent/protocol/ehc1"
)

// Env is a test trust chain, a trust store over it, a pool of distinct valid codes and
// one signed message for the single-signature figures.
type Env struct {
	Dir   string
	Keys  *issuer.Keys
	Store *trust.Store
	At    time.Time // when the codes are verified
	Codes [][]byte  // distinct valid EHC1 codes ("EHC1:…")

	// One holder signature over a real code's signed span (257 bytes), in every form
	// the libraries take.
	Msg    []byte
	RS     []byte // r ‖ s
	DER    []byte
	Pub    *sm2sig.PublicKey // the agent's wrapper (Z precomputed)
	EmPub  *ecdsa.PublicKey  // emmansun/gmsm
	TjPub  *tjsm2.PublicKey  // tjfoc/gmsm
	PubPEM []byte
}

// NewEnv makes keys in dir (created) and pool codes.
func NewEnv(dir string, pool int) (*Env, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	keys, err := issuer.GenerateKeys(filepath.Join(dir, "keys"), issuer.GenerateOptions{})
	if err != nil {
		return nil, err
	}
	ts, err := trust.LoadDir(filepath.Join(dir, "keys"), trust.Options{})
	if err != nil {
		return nil, err
	}
	e := &Env{Dir: dir, Keys: keys, Store: ts, At: time.Now().Truncate(time.Second)}
	for i := range pool {
		c, err := keys.NewCode(issuer.CodeOptions{At: e.At, Sequence: uint32(i), Validity: 3600})
		if err != nil {
			return nil, err
		}
		e.Codes = append(e.Codes, []byte(c))
	}
	c, err := ehc1.ParseText(e.Codes[0])
	if err != nil {
		return nil, err
	}
	e.Msg, e.RS = c.CodeSigned(), c.HolderSig[:]
	if e.DER, err = sm2sig.RawToDER(e.RS); err != nil {
		return nil, err
	}
	e.Pub = sm2sig.Public(keys.Holder)
	e.EmPub = e.Pub.ECDSA()
	e.TjPub = &tjsm2.PublicKey{Curve: tjsm2.P256Sm2(), X: new(big.Int).Set(e.EmPub.X), Y: new(big.Int).Set(e.EmPub.Y)}
	if e.PubPEM, err = e.Pub.MarshalPEM(); err != nil {
		return nil, err
	}
	return e, e.check()
}

// check makes sure every Op verifies what it is given: a benchmark of a failing
// verification would measure the wrong path.
func (e *Env) check() error {
	for _, op := range e.Ops() {
		if err := op.Once(); err != nil {
			return fmt.Errorf("%s: %w", op.Name, err)
		}
	}
	return nil
}

// Op is one measured operation.
type Op struct {
	Name string // e.g. "sm2/tjfoc"
	What string // one line for the report
	Sigs int    // SM2 verifications per operation
	// Once does the operation once and says whether it gave the expected answer.
	Once func() error
}

var errWrong = fmt.Errorf("verification failed")

func ok(b bool) error {
	if !b {
		return errWrong
	}
	return nil
}

// Ops returns the operations, in report order. Each call returns fresh verifiers and
// code cursors.
func (e *Env) Ops() []Op {
	cursor := func() func() []byte {
		i := 0
		return func() []byte {
			c := e.Codes[i]
			i = (i + 1) % len(e.Codes)
			return c
		}
	}
	ours := func(cache int) func() error {
		v := verify.New(e.Store, nil, verify.Options{CertCacheSize: cache})
		next := cursor()
		return func() error {
			if r := v.Verify(next(), "bench", e.At); r.Status != verify.StatusValid {
				return fmt.Errorf("%s: %s", r.Status, r.Reason)
			}
			return nil
		}
	}
	tj := func(cache bool) func() error {
		v := NewTjfocVerifier(e.Store, cache)
		next := cursor()
		return func() error {
			if reason, _ := v.Verify(next(), e.At); reason != "" {
				return fmt.Errorf("invalid: %s", reason)
			}
			return nil
		}
	}
	return []Op{
		{Name: "sm2/ours", Sigs: 1, What: "offline/sm2sig Verify (emmansun/gmsm, Z of the key precomputed, raw r‖s)",
			Once: func() error { return ok(e.Pub.Verify(e.Msg, e.RS)) }},
		{Name: "sm2/emmansun", Sigs: 1, What: "emmansun/gmsm sm2.VerifyASN1WithSM2 (Z hashed on every call, DER)",
			Once: func() error { return ok(sm2.VerifyASN1WithSM2(e.EmPub, nil, e.Msg, e.DER)) }},
		{Name: "sm2/tjfoc", Sigs: 1, What: "tjfoc/gmsm sm2.Sm2Verify (Z hashed on every call, r and s as big.Int)",
			Once: func() error {
				return ok(tjsm2.Sm2Verify(e.TjPub, e.Msg, nil, new(big.Int).SetBytes(e.RS[:32]), new(big.Int).SetBytes(e.RS[32:])))
			}},
		{Name: "ehc1/ours", Sigs: 2, What: "offline/verify, steps 1-9, issuer certificate cached (as the agent runs)",
			Once: ours(0)},
		{Name: "ehc1/tjfoc", Sigs: 2, What: "the same checks with tjfoc/gmsm, certificate cached the same way",
			Once: tj(true)},
		{Name: "ehc1/ours-nocache", Sigs: 3, What: "offline/verify, steps 1-9, all three signatures every time",
			Once: ours(-1)},
		{Name: "ehc1/tjfoc-nocache", Sigs: 3, What: "the same checks with tjfoc/gmsm, all three signatures every time",
			Once: tj(false)},
	}
}

// SignOpenSSLInputs writes the holder's public key (PEM), the message and its DER
// signature into dir for `openssl pkeyutl -verify`, and returns their paths.
func (e *Env) SignOpenSSLInputs(dir string) (pub, msg, sig string, err error) {
	pub, msg, sig = filepath.Join(dir, "holder.pub.pem"), filepath.Join(dir, "msg.bin"), filepath.Join(dir, "sig.der")
	for p, b := range map[string][]byte{pub: e.PubPEM, msg: e.Msg, sig: e.DER} {
		if err = os.WriteFile(p, b, 0o600); err != nil {
			return
		}
	}
	return
}

package fleet

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// FuzzCommand feeds arbitrary payloads to what a terminal does with a message on its
// cmd topic: parse, then check. Neither may panic; a payload is accepted only if it
// is the one command the fleet key signed (the fuzzer cannot forge a signature, so
// anything else accepted would be a hole), and only once.
func FuzzCommand(f *testing.F) {
	key, err := sm2sig.ParsePrivateKey([]byte("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8"))
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1764028800, 0)
	signed, err := NewCommand("K-0001", VerbTrigger, map[string]string{"device": "front"}, now)
	if err != nil {
		f.Fatal(err)
	}
	// Fixed, so that every fuzzing process (each runs this) has the same command.
	signed.RequestID, signed.Nonce = "r1", "0011223344556677"
	if err := signed.Sign(key); err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(signed)
	f.Add(good, VerbTrigger)
	f.Add(good, VerbDoctor)
	f.Add([]byte(`{"request_id":"r1"}`), VerbDoctor)
	f.Add([]byte(`{"request_id":"r1","sig":"!!"}`), VerbDoctor)
	f.Add([]byte(`{"request_id":"r1","terminal_id":"K-0001","verb":"doctor","ts":1764028800,"nonce":"0011223344556677","sig":"AAAA"}`), VerbDoctor)
	f.Add([]byte(`[]`), VerbDoctor)
	f.Add([]byte(`{"request_id":"a/b"}`), VerbDoctor)
	f.Fuzz(func(t *testing.T, payload []byte, verb string) {
		c, err := parse(payload)
		if err != nil {
			var r *Refusal
			if !errors.As(err, &r) || r.Reason != ReasonMalformed {
				t.Fatalf("parse error %v is not a malformed refusal", err)
			}
			return
		}
		if CheckID(c.RequestID) != nil {
			t.Fatalf("parse passed request id %q, which cannot name a reply topic", c.RequestID)
		}
		v := newVerifier("K-0001", sm2sig.Public(key), now.Add(-time.Minute))
		if err := v.check(c, verb, now); err != nil {
			var r *Refusal
			if !errors.As(err, &r) || r.Reason == "" {
				t.Fatalf("check error %v carries no reason", err)
			}
			return
		}
		if c.SignedString() != signed.SignedString() || verb != VerbTrigger {
			t.Fatalf("accepted a command the key never signed: %+v on cmd/%s", c, verb)
		}
		if err := v.check(c, verb, now); err == nil {
			t.Fatal("the same command accepted twice")
		}
	})
}

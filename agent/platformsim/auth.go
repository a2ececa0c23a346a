package platformsim

import (
	"encoding/base64"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// 401 reasons (PLATFORM.md, Authentication).
const (
	ReasonBadSignature    = "bad_signature"
	ReasonStaleTimestamp  = "stale_timestamp"
	ReasonNonceReplayed   = "nonce_replayed"
	ReasonUnknownTerminal = "unknown_terminal"
)

// Windows of the spec: a ts further than TSWindow from the platform's clock is stale; a
// nonce seen from the terminal within NonceWindow is a replay.
const (
	TSWindow    = 300 * time.Second
	NonceWindow = 600 * time.Second
)

// authHeader is the one accepted form, strictly: the spec fixes the order and forbids
// spaces, so anything else is a bad signature rather than something to guess at.
// 64 bytes of r‖s are 86 base64 characters and "==".
var authHeader = regexp.MustCompile(`^EHC-SM2 terminal=([A-Za-z0-9._-]{1,64}),ts=(0|[1-9][0-9]{0,18}),nonce=([0-9a-f]{16}),sig=([A-Za-z0-9+/]{86}==)$`)

type auth struct {
	terminal, nonce string
	ts              int64
	sig             []byte
}

func parseAuth(h string) (auth, bool) {
	m := authHeader.FindStringSubmatch(h)
	if m == nil {
		return auth{}, false
	}
	ts, err := strconv.ParseInt(m[2], 10, 64)
	if err != nil {
		return auth{}, false
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(m[4])
	if err != nil || len(sig) != sm2sig.SignatureSize {
		return auth{}, false
	}
	return auth{terminal: m[1], ts: ts, nonce: m[3], sig: sig}, true
}

// nonceCache remembers (terminal, nonce) pairs for NonceWindow. Entries expire in the
// order they were added, so a FIFO is enough to prune: memory is bounded by the request
// rate times the window.
type nonceCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
	fifo []nonceEntry
}

type nonceEntry struct {
	key string
	at  time.Time
}

// admit records key at now and reports whether it was new within the window.
func (c *nonceCache) admit(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	for len(c.fifo) > 0 && now.Sub(c.fifo[0].at) > NonceWindow {
		if c.seen[c.fifo[0].key].Equal(c.fifo[0].at) {
			delete(c.seen, c.fifo[0].key)
		}
		c.fifo = c.fifo[1:]
	}
	if at, ok := c.seen[key]; ok && now.Sub(at) <= NonceWindow {
		return false
	}
	c.seen[key] = now
	c.fifo = append(c.fifo, nonceEntry{key, now})
	return true
}

// authenticate checks a request's signature and returns the signing terminal, or the
// 401 reason.
func (s *Server) authenticate(method, path, rawQuery, header string, body []byte, now time.Time) (string, string) {
	a, ok := parseAuth(header)
	if !ok {
		return "", ReasonBadSignature
	}
	pub := s.terminalKey(a.terminal)
	if pub == nil {
		return a.terminal, ReasonUnknownTerminal
	}
	if !pub.Verify([]byte(uplink.SignedString(method, path, rawQuery, a.ts, a.nonce, body)), a.sig) {
		return a.terminal, ReasonBadSignature
	}
	if d := now.Sub(time.Unix(a.ts, 0)); d > TSWindow || d < -TSWindow {
		return a.terminal, ReasonStaleTimestamp
	}
	// Only a verified request may take a nonce, or anyone could burn a terminal's nonces.
	if !s.nonces.admit(a.terminal+"/"+a.nonce, now) {
		return a.terminal, ReasonNonceReplayed
	}
	return a.terminal, ""
}

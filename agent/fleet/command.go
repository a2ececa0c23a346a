package fleet

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"

	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// CommandWindow is how far a command's ts may be from the terminal's clock, either way.
const CommandWindow = 60 * time.Second

// SignedPrefix is the first line of every signed command string: it keeps a fleet
// signature from ever being taken for a platform request's, or the reverse.
const SignedPrefix = "EHC-FLEET-CMD/1"

// Reasons a reply gives when a command is refused or fails. They are stable: tools and
// dashboards match on them.
const (
	ReasonMalformed        = "malformed"         // not a command object, or a field out of its form
	ReasonUnsigned         = "unsigned"          // no sig
	ReasonBadSignature     = "bad_signature"     // sig does not verify with the pinned fleet key
	ReasonStale            = "stale"             // ts more than CommandWindow away, or before this agent started
	ReasonReplayed         = "replayed"          // nonce already seen within the window
	ReasonWrongTerminal    = "wrong_terminal"    // signed for another terminal
	ReasonVerbMismatch     = "verb_mismatch"     // signed verb is not the topic's
	ReasonUnknownVerb      = "unknown_verb"      // not one of Verbs
	ReasonCommandsDisabled = "commands_disabled" // no fleet key configured: every command is refused
	ReasonReplayCacheFull  = "replay_cache_full" // too many commands within the window to remember
	ReasonUnsupported      = "unsupported"       // the verb exists but this agent cannot do it yet
	ReasonBadArgs          = "bad_args"          // args missing or not as the verb wants
	ReasonFailed           = "failed"            // the verb ran and failed; detail says how
	ReasonTimeout          = "timeout"           // the verb did not finish within its time
)

var noncePattern = regexp.MustCompile(`^[0-9a-f]{16,64}$`)

// maxNonces bounds the replay cache: far beyond what operators send one terminal in two
// windows, small enough that a flood cannot grow the agent's memory.
const maxNonces = 4096

// Command is a signed request to one terminal, as published on …/cmd/<verb>.
type Command struct {
	RequestID  string          `json:"request_id"`
	TerminalID string          `json:"terminal_id"`
	Verb       string          `json:"verb"`
	TS         int64           `json:"ts"`    // unix seconds
	Nonce      string          `json:"nonce"` // 16..64 lowercase hex digits
	Args       json.RawMessage `json:"args,omitempty"`
	Sig        string          `json:"sig,omitempty"` // standard base64 (padded) of raw r ‖ s
}

// SignedString is what the signature covers: SignedPrefix, terminal id, verb, request
// id, ts, nonce and lowercase hex SM3 of the args exactly as they appear in the payload
// (of the empty string when there are none), joined by "\n" with no trailing newline.
// Hashing the args as sent means no JSON canonicalisation on either side.
func (c *Command) SignedString() string {
	h := sm3.Sum(c.Args)
	return strings.Join([]string{SignedPrefix, c.TerminalID, c.Verb, c.RequestID,
		strconv.FormatInt(c.TS, 10), c.Nonce, hex.EncodeToString(h[:])}, "\n")
}

// NewCommand builds a command for terminal with a fresh request id and nonce, ts from
// now, and args marshalled (nil: none). It is not signed yet.
func NewCommand(terminal, verb string, args any, now time.Time) (*Command, error) {
	c := &Command{TerminalID: terminal, Verb: verb, TS: now.Unix()}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	c.RequestID = "r" + hex.EncodeToString(b[:8])
	c.Nonce = hex.EncodeToString(b[8:])
	if args != nil {
		raw, err := json.Marshal(args)
		if err != nil {
			return nil, fmt.Errorf("args: %w", err)
		}
		c.Args = raw
	}
	return c, nil
}

// Sign sets c.Sig with the fleet's private key.
func (c *Command) Sign(key *sm2.PrivateKey) error {
	sig, err := sm2sig.Sign(key, []byte(c.SignedString()))
	if err != nil {
		return err
	}
	c.Sig = base64.StdEncoding.EncodeToString(sig)
	return nil
}

// ParseCommandKey reads the fleet's public key as configured: 130 (or 66) hex digits
// given inline, or the path of a file holding the key as hex or as a PEM "PUBLIC KEY".
func ParseCommandKey(v string) (*sm2sig.PublicKey, error) {
	if strings.Trim(strings.TrimSpace(v), "0123456789abcdefABCDEF \t\r\n") == "" {
		return sm2sig.ParsePublicKeyHex(v)
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return nil, err
	}
	return sm2sig.ParsePublicKeyText(b)
}

// Refusal is an error a reply carries as its reason and detail.
type Refusal struct {
	Reason string // one of the Reason… constants
	Detail string // for a person; never personal data
}

func (r *Refusal) Error() string {
	if r.Detail == "" {
		return r.Reason
	}
	return r.Reason + ": " + r.Detail
}

// Refuse returns a *Refusal: handlers return it to answer with their own reason.
func Refuse(reason, format string, args ...any) error {
	return &Refusal{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Reply is the answer published on …/reply/<request id>.
type Reply struct {
	RequestID  string          `json:"request_id"`
	TerminalID string          `json:"terminal_id"`
	Verb       string          `json:"verb,omitempty"`
	OK         bool            `json:"ok"`
	Reason     string          `json:"reason,omitempty"`
	Detail     string          `json:"detail,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	At         time.Time       `json:"at"`
}

// verifier checks commands for one terminal: signature by the pinned key, freshness,
// single use. It is safe for concurrent use.
type verifier struct {
	terminal string
	key      *sm2sig.PublicKey // nil: commands disabled
	started  time.Time         // commands signed before it may have run in an earlier life
	// uptime, when set, is how long ago this process started, on the monotonic clock.
	// The clock check uses (the agent's trusted clock, moved by the platform's offset
	// after its first answer) may jump after started was read: the start on that clock
	// is then now − uptime, and a command signed before it is refused too.
	uptime func() time.Duration

	mu     sync.Mutex
	nonces map[string]time.Time // nonce → when it can be forgotten (its ts + window)
}

func newVerifier(terminal string, key *sm2sig.PublicKey, started time.Time) *verifier {
	return &verifier{terminal: terminal, key: key, started: started, nonces: map[string]time.Time{}}
}

// parse reads the command in payload far enough to answer it: the request id is
// returned whenever it is readable and well-formed, even when the command is refused.
func parse(payload []byte) (*Command, error) {
	var c Command
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, &Refusal{ReasonMalformed, "not a JSON command object"}
	}
	if CheckID(c.RequestID) != nil {
		return nil, &Refusal{ReasonMalformed, "request_id must be 1-64 of A-Z a-z 0-9 . _ -"}
	}
	return &c, nil
}

// check decides on a parsed command received on the topic of verb topicVerb. The
// signature is checked before anything else is believed; the nonce is remembered only
// for a command that passed every other check, so that forged or stale traffic cannot
// fill the cache.
func (v *verifier) check(c *Command, topicVerb string, now time.Time) error {
	if v.key == nil {
		return &Refusal{ReasonCommandsDisabled, "no fleet.command_key is configured on this terminal"}
	}
	if c.Sig == "" {
		return &Refusal{ReasonUnsigned, "the command has no sig"}
	}
	sig, err := base64.StdEncoding.DecodeString(c.Sig)
	if err != nil || len(sig) != sm2sig.SignatureSize {
		return &Refusal{ReasonBadSignature, "sig is not standard base64 of a 64-byte r‖s"}
	}
	if !noncePattern.MatchString(c.Nonce) {
		return &Refusal{ReasonMalformed, "nonce must be 16-64 lowercase hex digits"}
	}
	if !v.key.Verify([]byte(c.SignedString()), sig) {
		return &Refusal{ReasonBadSignature, "the signature does not verify with the pinned fleet key"}
	}
	if c.TerminalID != v.terminal {
		return &Refusal{ReasonWrongTerminal, fmt.Sprintf("signed for terminal %q", c.TerminalID)}
	}
	if c.Verb != topicVerb {
		return &Refusal{ReasonVerbMismatch, fmt.Sprintf("signed verb %q arrived on cmd/%s", c.Verb, topicVerb)}
	}
	ts := time.Unix(c.TS, 0)
	if d := now.Sub(ts); d > CommandWindow || d < -CommandWindow {
		return &Refusal{ReasonStale, fmt.Sprintf("ts is %s from this terminal's clock (window %s)", d.Round(time.Second), CommandWindow)}
	}
	// The nonce cache lives in memory: a command from before this start could have run
	// in the previous process, which remembered it, so it is refused whatever its age.
	started := v.started
	if v.uptime != nil {
		if s := now.Add(-v.uptime()); s.After(started) {
			started = s
		}
	}
	if c.TS < started.Unix() {
		return &Refusal{ReasonStale, "signed before this agent started (replay protection across restarts)"}
	}
	if !knownVerb(c.Verb) {
		return &Refusal{ReasonUnknownVerb, fmt.Sprintf("%q is not one of %s", c.Verb, strings.Join(Verbs, ", "))}
	}
	return v.remember(c.Nonce, ts.Add(CommandWindow), now)
}

func (v *verifier) remember(nonce string, until, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, seen := v.nonces[nonce]; seen {
		return &Refusal{ReasonReplayed, "this nonce was already used"}
	}
	if len(v.nonces) >= maxNonces {
		for n, t := range v.nonces {
			if !t.After(now) {
				delete(v.nonces, n)
			}
		}
		if len(v.nonces) >= maxNonces {
			return &Refusal{ReasonReplayCacheFull, fmt.Sprintf("more than %d commands within %s", maxNonces, 2*CommandWindow)}
		}
	}
	v.nonces[nonce] = until
	return nil
}

// reasonOf maps a handler's error to a reply's reason and detail.
func reasonOf(err error) (string, string) {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Reason, r.Detail
	}
	if errors.Is(err, errTimeout) {
		return ReasonTimeout, err.Error()
	}
	return ReasonFailed, err.Error()
}

var errTimeout = errors.New("the command did not finish in time")

// Package uplink is the agent's client of the platform (PLATFORM.md): it delivers the
// outbox, keeps the trust store fresh and resolves online codes.
//
// Transport (PLATFORM.md, Authentication): HTTPS with the platform's CA pinned — only
// the configured CA file is trusted, never the system roots — TLS 1.2 or later, and a
// client certificate where the deployment asks for one. Plain http is accepted only
// for a loopback URL, which is where the emulator (`ehc-agent sim platform`) runs in
// tests and the demo. Every request is signed with the terminal's SM2 key; each
// attempt is signed anew, with a fresh ts and nonce, and Go's transparent retries are
// off (request bodies are not rewindable and redirects are not followed), so a retry
// is always ours and always freshly signed.
//
// Time (PLATFORM.md, Time): every answer's Date — which comes over the pinned TLS
// connection, or from the loopback emulator — gives the offset between the platform's
// clock and ours. Beyond Options.ClockOffsetLimit the status raises
// clock_offset and Now becomes local time plus the offset, for request timestamps and
// for code verification, until an answer shows the clock back within the limit.
//
// Delivery guarantees (PLATFORM.md, Delivery rules):
//   - Batches hold at most 100 events and 1 MiB of body, in seq order; a batch is
//     sent only after the one before it was settled, so the platform first sees
//     events in seq order.
//   - An event leaves the queue only on the platform's word: accepted or duplicate →
//     Delivered; rejected → DeadLetter with the platform's reason; a single event too
//     large for a batch → DeadLetter "too_large". Nothing else removes an event:
//     5xx, 429, 401, timeouts, resets and answers that are lost or unreadable all
//     retry the same batch, with exponential backoff and jitter from 250 ms to 60 s
//     (Retry-After when the platform gives one). A lost answer makes the platform see
//     the batch twice; it deduplicates by event_id, so the effect is exactly once.
//   - 413 and a 400 for the whole batch split it in halves until the culprit is alone.
//   - A new event wakes the loop at once (Notify); an empty queue costs nothing but a
//     timer every IdlePoll.
//
// Goroutines: RunDelivery and RunTrustSync each block until their context ends; the
// caller owns them. Nothing else in the package starts a goroutine.
package uplink

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"github.com/ehc-agent/ehc-agent/offline/outbox"
	"github.com/ehc-agent/ehc-agent/offline/trust"
)

// Defaults of Options.
const (
	DefaultTimeout           = 10 * time.Second
	DefaultResolveTimeout    = 1500 * time.Millisecond
	DefaultClockOffsetLimit  = 120 * time.Second
	DefaultTrustSyncInterval = time.Hour
	DefaultMinBackoff        = 250 * time.Millisecond
	DefaultMaxBackoff        = 60 * time.Second
	DefaultIdlePoll          = 30 * time.Second
)

// maxAnswer bounds what is read of an answer: a trust envelope is the largest.
const maxAnswer = trust.MaxEnvelopeSize

// Options configure an Uplink.
type Options struct {
	URL        string // base URL; https, or http on a loopback host
	TerminalID string
	Key        *sm2.PrivateKey // the terminal's signing key
	// TLS carries the pinned CA (RootCAs) and the client certificate; LoadTLS builds
	// it. Required for an https URL.
	TLS *tls.Config

	Timeout           time.Duration // one request of delivery or trust sync
	ResolveTimeout    time.Duration // one /codes/resolve
	ClockOffsetLimit  time.Duration
	TrustSyncInterval time.Duration // longest pause between trust syncs
	MinBackoff        time.Duration
	MaxBackoff        time.Duration
	IdlePoll          time.Duration // an idle loop looks at the outbox this often even without Notify

	Outbox *outbox.Outbox
	Trust  *trust.Store // nil: no trust sync
	Logger *slog.Logger
}

// Uplink is the platform client. Its methods are safe for concurrent use.
type Uplink struct {
	o    Options
	base *url.URL
	http *http.Client
	log  *slog.Logger
	wake chan struct{}

	// pinned is the platform's time tied to a clock that is never stepped (sinceBoot),
	// while the offset is raised; nil otherwise.
	pinned   atomic.Pointer[pin]
	measured atomic.Int64 // last measured platform − local, nanoseconds
	// measuredAt is when measured was taken, Unix nanoseconds; 0: no answer with a Date yet.
	measuredAt atomic.Int64
	raised     atomic.Bool

	mu    sync.Mutex // guards st and etags
	st    Status
	etags map[string]string // trust document kind → ETag of the accepted document

	compacted time.Time // last outbox compaction; RunDelivery's own
}

// New checks o and builds the client; nothing runs until RunDelivery / RunTrustSync.
func New(o Options) (*Uplink, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ResolveTimeout <= 0 {
		o.ResolveTimeout = DefaultResolveTimeout
	}
	if o.ClockOffsetLimit <= 0 {
		o.ClockOffsetLimit = DefaultClockOffsetLimit
	}
	if o.TrustSyncInterval <= 0 {
		o.TrustSyncInterval = DefaultTrustSyncInterval
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.IdlePoll <= 0 {
		o.IdlePoll = DefaultIdlePoll
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Key == nil {
		return nil, errors.New("uplink: no terminal key")
	}
	if o.Outbox == nil {
		return nil, errors.New("uplink: no outbox")
	}
	base, err := CheckURL(o.URL)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		// HTTP/1.1 only: HTTP/2 has retry rules of its own, and one request at a time
		// gains nothing from multiplexing.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	if base.Scheme == "https" {
		if o.TLS == nil || o.TLS.RootCAs == nil {
			return nil, errors.New("uplink: an https platform needs its CA pinned (TLS.RootCAs)")
		}
		c := o.TLS.Clone()
		if c.MinVersion < tls.VersionTLS12 {
			c.MinVersion = tls.VersionTLS12
		}
		tr.TLSClientConfig = c
	}
	u := &Uplink{
		o: o, base: base, log: o.Logger, wake: make(chan struct{}, 1),
		http: &http.Client{
			Transport: tr,
			// A redirect would replay a signed request at another path.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		etags: map[string]string{},
	}
	u.st.URL = base.Redacted()
	u.st.State = StateIdle
	return u, nil
}

// CheckURL parses a platform base URL: https, or http only when the host is loopback
// (127.0.0.0/8, ::1, localhost). No query, fragment or user info.
func CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %v", err)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q must be scheme://host[:port][/path], without user, query or fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("%q: plain http only for a loopback host (the emulator); use https", raw)
		}
	default:
		return nil, fmt.Errorf("%q: scheme must be https (or http on loopback)", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

// Notify tells the delivery loop that an event was appended. It never blocks.
func (u *Uplink) Notify() {
	select {
	case u.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// wallNow is the local clock; tests step it as NTP or a technician would.
var wallNow = time.Now

// pin is the platform's time at one moment, and that moment on a clock that is never
// stepped (sinceBoot).
type pin struct {
	platform time.Time // wall time only
	at       time.Duration
}

// processStart anchors sinceBoot where the system has no boot-time clock.
var processStart = time.Now()

// Now is the trusted time: the local clock, or, once the offset is beyond the limit,
// the platform's time as last measured plus what a clock that is never stepped says
// elapsed since. Pinned so rather than kept as an offset from the wall clock, it stays
// right when that clock is stepped meanwhile: a kiosk running 10 min
// slow whose clock NTP then fixes while the platform is unreachable would otherwise be
// 10 min ahead until the platform answers again, and turn every dynamic code away as
// expired.
func (u *Uplink) Now() time.Time {
	if p := u.pinned.Load(); p != nil {
		return p.platform.Add(sinceBoot() - p.at)
	}
	return wallNow()
}

// ClockOffset returns the last measured offset (platform − local) and whether it is
// beyond the limit, that is, applied by Now.
func (u *Uplink) ClockOffset() (time.Duration, bool) {
	return time.Duration(u.measured.Load()), u.raised.Load()
}

// answer is a platform answer, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends one signed attempt of a request and reads the answer. An error means no
// answer (network, timeout, reset); any HTTP status is an answer.
func (u *Uplink) do(ctx context.Context, method, path, rawQuery string, body []byte, hdr http.Header, timeout time.Duration) (*answer, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	target := *u.base
	target.Path = u.base.Path + path
	target.RawQuery = rawQuery
	req, err := http.NewRequestWithContext(ctx, method, target.String(), nil)
	if err != nil {
		return nil, err
	}
	// A body the transport cannot rewind (no GetBody) makes every request, GET
	// included, non-replayable: net/http then never resends it on a broken keep-alive
	// connection, which would reuse this attempt's nonce.
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	auth, err := Sign(u.o.Key, u.o.TerminalID, method, req.URL.EscapedPath(), req.URL.RawQuery, u.Now().Unix(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", auth)
	sent := wallNow()
	resp, err := u.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	u.observeDate(resp.Header.Get("Date"), sent, wallNow())
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxAnswer {
		return nil, fmt.Errorf("answer larger than %d bytes", maxAnswer)
	}
	if resp.StatusCode < 300 || resp.StatusCode == http.StatusNotModified {
		// Only an answer past authentication says the signature is good again: a 503
		// from a load balancer says nothing about it.
		u.mu.Lock()
		u.st.LastSuccess = time.Now()
		if u.st.AuthFailed {
			u.st.AuthFailed = false
			u.log.Info("platform accepts the terminal's signature again")
		}
		u.mu.Unlock()
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// observeDate measures the platform's clock against ours from an answer's Date. Date
// has whole seconds, so the platform's time is Date + 0.5 s ± 0.5 s, taken when the
// request was half-way.
func (u *Uplink) observeDate(date string, sent, got time.Time) {
	t, err := http.ParseTime(date)
	if err != nil {
		return
	}
	off := t.Add(500 * time.Millisecond).Sub(sent.Add(got.Sub(sent) / 2))
	u.measured.Store(int64(off))
	u.measuredAt.Store(got.UnixNano())
	limit := u.o.ClockOffsetLimit
	if off > limit || off < -limit {
		u.pinned.Store(&pin{platform: got.Add(off).Round(0), at: sinceBoot()})
		if !u.raised.Swap(true) {
			u.log.Warn("local clock is off from the platform's; using the platform's time",
				"reason", "clock_offset", "offset", off.Round(time.Second).String(), "limit", limit.String())
		}
		return
	}
	if u.raised.Swap(false) {
		u.pinned.Store(nil)
		u.log.Info("local clock is back within the limit of the platform's", "offset", off.Round(time.Second).String())
	}
}

// backoff is the pause before retry number n (1, 2, …): exponential from MinBackoff,
// capped at MaxBackoff, with "equal jitter" (half fixed, half random) so that a fleet
// that lost the platform at once does not come back at once.
func (u *Uplink) backoff(n int) time.Duration {
	d := u.o.MinBackoff
	for i := 1; i < n && d < u.o.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, u.o.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// netReason names a failure without an answer.
func netReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "stopped"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		var ce *tls.CertificateVerificationError
		if errors.As(err, &ce) {
			return "tls_untrusted"
		}
	}
	return "unreachable"
}

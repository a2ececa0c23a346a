// Package platformsim is the platform emulator: the server side of PLATFORM.md on
// loopback, for tests and the demo (`ehc-agent sim platform`).
//
// What it implements, as the spec says:
//   - Authentication: every /api/v1 request must carry a valid EHC-SM2 signature by a
//     known terminal (keys from DataDir/terminals/<id>.pub or Options.Terminals); a ts
//     more than 300 s from the emulator's clock, or a nonce that terminal used in the
//     last 600 s, is refused with 401 and the spec's reason. Every answer carries Date
//     from the emulator's clock (Options.Now), which may be set off to test clock
//     offsets. With Options.TLS and ClientCAs it also requires a client certificate
//     whose common name is the signing terminal.
//   - POST /api/v1/events: 413 over 100 events or 1 MiB; 400 for a body that is not
//     {"events":[…]}; otherwise 200 with accepted, duplicates (by event_id, compared
//     case-insensitively; the first content wins, a different second content is
//     counted as a conflict — an id already accepted is a duplicate before any check
//     of the copy's content, so a second copy is never rejected) and rejected (schema, bad_event_id, terminal_mismatch,
//     too_large). Accepted events are appended to DataDir/events.jsonl and fsync'd
//     before the answer, and read back at start, so dedup survives a restart.
//   - GET /api/v1/trust/keyset and /trust/revocations?since=: the files keyset.json and
//     revocations.json of a `sim keys` directory (TrustDir), read at every request, so
//     a test or a demo can swap them, with a strong ETag and 304 for If-None-Match or
//     a version not above since. since is required (400 missing_since / bad_since).
//   - POST /api/v1/codes/resolve from DataDir/codes.json (code → identity object, an
//     optional "expires_at" RFC 3339 field) plus the cards issued by
//     POST /api/v1/cards/apply (idempotent by application_id, one card per resident,
//     kept in memory only; a resident listed in codes.json already has a card; an ID
//     number with a wrong GB 11643 check digit is refused, 422 bad_id_number).
//
// Faults (SetFaults, Down) act before the request is processed — latency, connection
// reset, 503, 429 with Retry-After — or after it: Drop processes the request (events
// are recorded) and then resets the connection instead of answering, the lost answer
// that makes an agent send a batch twice.
//
// It listens on loopback addresses only: it is not a platform, and nothing in this
// project sends traffic elsewhere.
package platformsim

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
)

// Limits of the events endpoint (PLATFORM.md, Endpoints).
const (
	MaxEvents     = 100
	MaxBodyBytes  = 1 << 20
	MaxEventBytes = 64 << 10 // one event above this is rejected as too_large
)

// Options configure a Server. The zero value serves from memory only.
type Options struct {
	// DataDir holds terminals/<id>.pub (130 hex digits or PEM), codes.json and
	// events.jsonl. Empty: nothing read or written.
	DataDir string
	// TrustDir is a `sim keys` output directory (keyset.json, revocations.json).
	// Empty: DataDir/trust.
	TrustDir string
	// Terminals are known in addition to DataDir/terminals.
	Terminals map[string]*sm2sig.PublicKey
	// Now is the platform's clock; nil is time.Now.
	Now func() time.Time
	// Limits; zero means the spec's values (MaxEvents, MaxBodyBytes, MaxEventBytes).
	MaxEvents, MaxBodyBytes, MaxEventBytes int
	// TLS serves HTTPS with this configuration (certificates, ClientCAs for mTLS).
	TLS *tls.Config
	// Seed makes the fault dice reproducible; 0 seeds them randomly.
	Seed   uint64
	Logger *slog.Logger
}

// Faults are injected on every /api/v1 request. Rates are probabilities in [0, 1];
// their sum should not exceed 1 for the pre-processing ones (Reset, Error, Throttle).
type Faults struct {
	Latency      time.Duration // before anything else
	ResetRate    float64       // connection reset before the request is processed
	ErrorRate    float64       // 503 before the request is processed
	ThrottleRate float64       // 429 with Retry-After before the request is processed
	RetryAfter   time.Duration // the Retry-After of a 429 (whole seconds; default 1 s)
	DropRate     float64       // processed (events stored, nonce used), then the connection is reset: the answer is lost
	// DropNext drops the answers of the next n processed requests (to DropPath only,
	// when set), whatever DropRate says: the one lost answer a test of a retry needs,
	// without dice.
	DropNext int
	DropPath string // e.g. "/api/v1/cards/apply"
}

// Received is one event the platform accepted.
type Received struct {
	Terminal string
	EventID  string // lowercase
	Seq      uint64
	JSON     []byte // as received (compacted)
	At       time.Time
}

// Stats count what the emulator did since it started.
type Stats struct {
	Requests   int
	Batches    int            // 200 answers to /events
	Accepted   int            // events
	Duplicates int            // events
	Rejected   map[string]int // event reason → count
	Conflicts  int            // duplicates whose content differed from the first
	PhotoLeaks int            // events carrying identity.photo (the spec forbids it)
	// Events carrying the ID card's address, authority or validity (local API only).
	IDCardDetailLeaks int
	// card_application events whose applicant is not masked.
	UnmaskedApplicants int
	Unauthorized       map[string]int // 401 reason → count
	TooLarge           int            // 413 answers
	BadBatches         int            // 400 answers to /events
	Resets             int            // injected resets, before processing
	Errors             int            // injected 503s
	Throttled          int            // injected 429s
	Drops              int            // processed, answer dropped
	DownResets         int            // connections reset while down
	NotModified        int            // 304 answers
	TrustDocuments     int            // 200 answers with a trust document
	Applications       int            // /cards/apply requests past validation, repeats included
	CardsIssued        int            // cards created by /cards/apply
}

// Server is the emulator. Its methods are safe for concurrent use.
type Server struct {
	o        Options
	log      *slog.Logger
	trustDir string
	nonces   nonceCache

	fmu      sync.Mutex
	faults   Faults
	dice     *rand.Rand
	downTill time.Time

	mu        sync.Mutex
	terminals map[string]*sm2sig.PublicKey
	seen      map[string][]byte // lowercase event_id → SM3 of the first content
	events    []Received
	journal   *os.File
	stats     Stats
	codes     codeTable
	apps      map[string]reply    // lowercase application_id → the answer given
	residents map[string]string   // id_type/id_number → ehc_id
	issued    map[string]identity // code → identity, from cards/apply

	// Serving: set by Start, stopped by Close.
	srv   *http.Server
	ln    net.Listener
	url   string
	done  chan struct{}
	cmu   sync.Mutex
	conns map[net.Conn]struct{}
}

// New prepares a server and loads what DataDir holds; nothing listens until Start.
func New(o Options) (*Server, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxEvents == 0 {
		o.MaxEvents = MaxEvents
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = MaxBodyBytes
	}
	if o.MaxEventBytes == 0 {
		o.MaxEventBytes = MaxEventBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	seed := o.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &Server{
		o: o, log: o.Logger, trustDir: o.TrustDir,
		dice:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		terminals: map[string]*sm2sig.PublicKey{},
		seen:      map[string][]byte{},
		apps:      map[string]reply{},
		residents: map[string]string{},
		issued:    map[string]identity{},
		conns:     map[net.Conn]struct{}{},
		stats:     Stats{Rejected: map[string]int{}, Unauthorized: map[string]int{}},
	}
	for id, k := range o.Terminals {
		s.terminals[id] = k
	}
	if s.trustDir == "" && o.DataDir != "" {
		s.trustDir = filepath.Join(o.DataDir, "trust")
	}
	if o.DataDir != "" {
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return nil, err
		}
		s.codes.path = filepath.Join(o.DataDir, "codes.json")
		if err := s.loadJournal(filepath.Join(o.DataDir, "events.jsonl")); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// AddTerminal makes a terminal known (as a file in DataDir/terminals would).
func (s *Server) AddTerminal(id string, pub *sm2sig.PublicKey) {
	s.mu.Lock()
	s.terminals[id] = pub
	s.mu.Unlock()
}

// terminalKey returns the terminal's key; a terminal registered by dropping a file into
// DataDir/terminals is found without a restart.
func (s *Server) terminalKey(id string) *sm2sig.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.terminals[id]; k != nil {
		return k
	}
	if s.o.DataDir == "" {
		return nil
	}
	// id matched [A-Za-z0-9._-]{1,64}; "." and ".." are not ids a file can be named by.
	if id == "." || id == ".." {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(s.o.DataDir, "terminals", id+".pub"))
	if err != nil {
		return nil
	}
	k, err := sm2sig.ParsePublicKeyText(b)
	if err != nil {
		s.log.Warn("terminal key file does not parse", "terminal", id, "err", err)
		return nil
	}
	s.terminals[id] = k
	return k
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) {
	s.fmu.Lock()
	s.faults = f
	s.fmu.Unlock()
}

// Down makes the platform unreachable for d: every connection, new or open, is reset.
func (s *Server) Down(d time.Duration) {
	s.fmu.Lock()
	s.downTill = time.Now().Add(d)
	s.fmu.Unlock()
	s.cmu.Lock()
	for c := range s.conns {
		resetConn(c)
	}
	s.cmu.Unlock()
}

// Up ends a Down early.
func (s *Server) Up() {
	s.fmu.Lock()
	s.downTill = time.Time{}
	s.fmu.Unlock()
}

func (s *Server) isDown() bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return time.Now().Before(s.downTill)
}

// roll returns the current faults and one uniform number in [0, 1).
func (s *Server) roll() (Faults, float64) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.faults, s.dice.Float64()
}

// takeDrop uses up one of Faults.DropNext for a request to path, if any is left.
func (s *Server) takeDrop(path string) bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.faults.DropNext > 0 && (s.faults.DropPath == "" || s.faults.DropPath == path) {
		s.faults.DropNext--
		return true
	}
	return false
}

// Events returns the accepted events in the order they were accepted.
func (s *Server) Events() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.events...)
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Rejected, st.Unauthorized = map[string]int{}, map[string]int{}
	for k, v := range s.stats.Rejected {
		st.Rejected[k] = v
	}
	for k, v := range s.stats.Unauthorized {
		st.Unauthorized[k] = v
	}
	return st
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// Start listens on addr (a loopback address; port 0 picks one) and serves until Close.
func (s *Server) Start(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("platformsim: %s is not a loopback address; the emulator serves tests and demos on this machine only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.ln = ln
	var l net.Listener = gate{ln, s}
	scheme := "http"
	if s.o.TLS != nil {
		l = tls.NewListener(l, s.o.TLS)
		scheme = "https"
	}
	s.url = scheme + "://" + ln.Addr().String()
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         s.track,
		// Injected resets make the server log handshake and read errors; they are
		// expected, so they go to the debug log rather than standard error.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("platform emulator stopped serving", "err", err)
		}
	}()
	return nil
}

// URL is the base URL clients use, such as http://127.0.0.1:40123.
func (s *Server) URL() string { return s.url }

// Addr is the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops serving, waits for the serving goroutine and closes the journal.
func (s *Server) Close() error {
	var err error
	if s.srv != nil {
		err = s.srv.Close()
		<-s.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal != nil {
		err = errors.Join(err, s.journal.Close())
		s.journal = nil
	}
	return err
}

func (s *Server) track(c net.Conn, st http.ConnState) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	switch st {
	case http.StateNew:
		s.conns[c] = struct{}{}
	case http.StateHijacked, http.StateClosed:
		delete(s.conns, c)
	}
}

// gate resets connections while the platform is down, so a client sees what it would
// see of a crashed platform behind a load balancer: a reset right after connecting.
type gate struct {
	net.Listener
	s *Server
}

func (g gate) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !g.s.isDown() {
			return c, nil
		}
		g.s.count(func(st *Stats) { st.DownResets++ })
		resetConn(c)
	}
}

// resetConn closes c with an RST rather than a FIN, as a crashed peer or a middlebox
// would.
func resetConn(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = c.Close()
}

// reset hijacks the request's connection and resets it: the client gets no answer.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	c, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	resetConn(c)
}

// reply is an answer not yet written, so that a fault can still drop it.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func jsonReply(status int, v any) reply {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own answer types are marshalled
	}
	return reply{status: status, header: http.Header{"Content-Type": {"application/json"}}, body: b}
}

func reasonReply(status int, reason string) reply {
	return jsonReply(status, map[string]string{"reason": reason})
}

type route struct {
	method string
	fn     func(r *http.Request, terminal string, body []byte, now time.Time) reply
}

func (s *Server) route(path string) (route, bool) {
	switch path {
	case "/api/v1/events":
		return route{http.MethodPost, s.handleEvents}, true
	case "/api/v1/trust/keyset":
		return route{http.MethodGet, s.handleKeySet}, true
	case "/api/v1/trust/revocations":
		return route{http.MethodGet, s.handleRevocations}, true
	case "/api/v1/codes/resolve":
		return route{http.MethodPost, s.handleResolve}, true
	case "/api/v1/cards/apply":
		return route{http.MethodPost, s.handleApply}, true
	}
	return route{}, false
}

// ServeHTTP is the emulator's whole request path: down, faults, size, auth, endpoint,
// drop.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := s.o.Now()
	s.count(func(st *Stats) { st.Requests++ })
	if s.isDown() {
		s.count(func(st *Stats) { st.DownResets++ })
		reset(w)
		return
	}
	f, x := s.roll()
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	// Date is taken after the latency, as a real server stamps its answer.
	now = s.o.Now()
	w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
	switch {
	case x < f.ResetRate:
		s.count(func(st *Stats) { st.Resets++ })
		reset(w)
		return
	case x < f.ResetRate+f.ErrorRate:
		s.count(func(st *Stats) { st.Errors++ })
		write(w, reasonReply(http.StatusServiceUnavailable, "injected"))
		return
	case x < f.ResetRate+f.ErrorRate+f.ThrottleRate:
		s.count(func(st *Stats) { st.Throttled++ })
		ra := int(f.RetryAfter / time.Second)
		if ra < 1 {
			ra = 1
		}
		w.Header().Set("Retry-After", fmt.Sprint(ra))
		write(w, reasonReply(http.StatusTooManyRequests, "throttled"))
		return
	}

	rt, ok := s.route(r.URL.Path)
	if !ok {
		write(w, reasonReply(http.StatusNotFound, "not_found"))
		return
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		write(w, reasonReply(http.StatusMethodNotAllowed, "method_not_allowed"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.o.MaxBodyBytes)+1))
	if err != nil {
		return // the client went away
	}
	if len(body) > s.o.MaxBodyBytes {
		s.count(func(st *Stats) { st.TooLarge++ })
		write(w, reasonReply(http.StatusRequestEntityTooLarge, "too_large"))
		return
	}
	terminal, why := s.authenticate(r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), body, now)
	if why == "" && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && r.TLS.PeerCertificates[0].Subject.CommonName != terminal {
		// mTLS maps the certificate to a terminal; a signature by another is not it.
		why = ReasonUnknownTerminal
	}
	if why != "" {
		s.count(func(st *Stats) { st.Unauthorized[why]++ })
		s.log.Info("request refused", "status", 401, "reason", why, "terminal", terminal, "path", r.URL.Path)
		write(w, reasonReply(http.StatusUnauthorized, why))
		return
	}
	rep := rt.fn(r, terminal, body, now)
	if _, y := s.roll(); y < f.DropRate || s.takeDrop(r.URL.Path) {
		s.count(func(st *Stats) { st.Drops++ })
		reset(w)
		return
	}
	write(w, rep)
}

func write(w http.ResponseWriter, rep reply) {
	for k, v := range rep.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rep.status)
	if rep.status != http.StatusNotModified {
		_, _ = w.Write(rep.body)
	}
}

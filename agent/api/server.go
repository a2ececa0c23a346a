package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/hints"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/drivers/holder"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// Defaults for the zero values of Options.
const (
	DefaultListen      = "127.0.0.1:17485"
	DefaultWSBuffer    = 256
	DefaultRingSize    = 1000
	DefaultStatusEvery = 15 * time.Second
	// ShutdownTimeout bounds Serve's return after its context ends.
	ShutdownTimeout = time.Second
	// MaxWait is the longest long-poll; a longer wait= is cut to it.
	MaxWait = 60 * time.Second
)

// Devices is what the trigger endpoints need from the agent. The daemon implements it;
// both methods must be safe to call from any goroutine.
type Devices interface {
	// Device returns the running device called name (it may implement device.Triggerer).
	Device(name string) (device.Device, bool)
	// DeviceStates returns the last reported state of every device.
	DeviceStates() map[string]device.State
}

// Options configure a Server. Token and Status are required.
type Options struct {
	Listen         string   // host:port; loopback unless TLSCert/TLSKey are given
	Token          string   // the bearer token clients must present (see LoadOrCreateToken)
	AllowedOrigins []string // browser origins allowed to call the API, e.g. "http://127.0.0.1:17485"
	TLSCert        string   // PEM files; both or neither
	TLSKey         string
	WSBuffer       int    // messages queued per WebSocket client before it is dropped
	RingSize       int    // events held for long-poll and WebSocket replay
	StartSeq       uint64 // last seq committed before this server started (events up to it are not held)

	// Status returns the agent's state, any JSON-encodable value (an object, so that the
	// server can add its own "api" and "build" parts).
	Status func() any
	// Devices backs the trigger endpoints; nil answers 404 for every device.
	Devices Devices
	// Lending backs the lend and reclaim endpoints; nil answers 404 for every device.
	Lending Lending
	// OutboxDepth, if set, is exported as the ehc_agent_outbox_depth gauge.
	OutboxDepth func() float64
	// ReserveInUse, if set, is exported as the ehc_agent_storage_reserve_in_use gauge:
	// the disk is full and events are committed in the space kept aside for them.
	ReserveInUse func() bool
	// StateReset, if set, is exported as the ehc_agent_state_reset gauge (1 or 0).
	StateReset func() float64
	// Platform, if set (a platform is configured), is read at every scrape for the
	// platform gauges: auth_failed and clock offset (PlatformState).
	Platform func() PlatformState
	// Build is added to /v1/status as "build" (version, commit, Go version).
	Build any
	// Applications backs /v1/applications (card applications); nil answers 404.
	Applications Applications

	StatusEvery time.Duration // how often connected WebSocket clients get a status message
	Logger      *slog.Logger
}

// Server is the local API. It is a pipeline.Subscriber (Event) and receives device state
// changes (DeviceState); both return at once whatever the clients do.
type Server struct {
	o       Options
	tls     *tls.Config
	access  *access
	hub     *hub
	metrics *metrics
	cards   *cardWatch // card reads for /compat/v1/sscard
	log     *slog.Logger
	mux     http.Handler

	closing chan struct{} // closed when Serve begins to stop
	served  sync.Once

	// WebSocket handlers, which http.Server.Shutdown does not wait for (their connections
	// are hijacked). wsMu orders every ws.Add before the ws.Wait at shutdown.
	wsMu     sync.Mutex
	wsClosed bool
	wsActive int // WebSocket handlers running, bounded by MaxWSClients
	ws       sync.WaitGroup
}

// New checks the options and builds a server; nothing listens until Listen.
func New(o Options) (*Server, error) {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.WSBuffer <= 0 {
		o.WSBuffer = DefaultWSBuffer
	}
	if o.RingSize <= 0 {
		o.RingSize = DefaultRingSize
	}
	if o.StatusEvery <= 0 {
		o.StatusEvery = DefaultStatusEvery
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if len(o.Token) < 16 {
		return nil, errors.New("api: a token of at least 16 characters is required")
	}
	if o.Status == nil {
		return nil, errors.New("api: a status provider is required")
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, errors.New("api: tls_cert and tls_key must be given together")
	}
	loopback, err := CheckListen(o.Listen, o.TLSCert != "")
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, log: o.Logger, closing: make(chan struct{}), cards: newCardWatch()}
	s.hub = newHub(o.RingSize, o.StartSeq, func(reason string) { s.metrics.wsDropped.WithLabelValues(reason).Inc() })
	if o.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("api: tls_cert/tls_key: %w", err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if s.access, err = newAccess(o.Token, o.AllowedOrigins, loopback); err != nil {
		return nil, err
	}
	s.metrics = newMetrics(o.OutboxDepth, o.ReserveInUse, s.hub)
	s.metrics.platform(o.Platform)
	s.metrics.stateReset(o.StateReset)
	if o.Applications != nil {
		o.Applications.OnReceipt(s.receipt)
	}
	s.mux = s.routes()
	return s, nil
}

// CheckListen refuses an address the API must not listen on: anything but a loopback
// address (or "localhost") unless TLS is configured. It reports whether addr is loopback.
func CheckListen(addr string, withTLS bool) (loopback bool, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("api.listen: %q is not host:port: %v", addr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return false, fmt.Errorf("api.listen: %q: bad port", addr)
	}
	if isLoopbackHost(host) {
		return true, nil
	}
	if withTLS {
		return false, nil
	}
	if host == "" {
		host = "all interfaces"
	}
	return false, fmt.Errorf("api.listen: %s (%s) is not a loopback address; the local API hands out identities and "+
		"listens beyond loopback only with TLS (set api.tls_cert and api.tls_key) or use 127.0.0.1", addr, host)
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Listen binds the configured address, so that a taken port is an error at start and
// not in a background goroutine: a *PortTakenError naming the program on it.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.o.Listen)
	if err != nil {
		if pt := PortTaken(s.o.Listen, err); pt != nil {
			return nil, pt
		}
		return nil, fmt.Errorf("api.listen: %w", err)
	}
	return ln, nil
}

// PortTakenError: another program listens on the API's address (hospitals run loopback
// services of their own on 21996, 38088, 5000, 9002, 8000…). Its reason code is
// hints.APIPortTaken.
type PortTakenError struct {
	Addr    string
	Holders []holder.Process // empty where they cannot be found (Windows, another user's process)
	Err     error
}

func (e *PortTakenError) Error() string {
	if len(e.Holders) == 0 {
		return fmt.Sprintf("api.listen %s: port taken by another program (%v)", e.Addr, e.Err)
	}
	return fmt.Sprintf("api.listen %s: port taken by %s", e.Addr, holder.Describe(e.Holders))
}

func (e *PortTakenError) Unwrap() error { return e.Err }

// PortTaken is the *PortTakenError of an error listening on addr, or nil when err is
// not "address in use".
func PortTaken(addr string, err error) *PortTakenError {
	if !addrInUse(err) {
		return nil
	}
	ps, _ := holder.TCPListener(addr)
	return &PortTakenError{Addr: addr, Holders: ps, Err: err}
}

// Handler is the API's HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.mux }

type connKey struct{}

// Serve answers on ln until ctx ends, then stops within ShutdownTimeout: long-polls are
// answered, WebSocket clients are sent a close frame with the reason agent_stopping, and
// the connections still open after that are cut. It is called once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	first := false
	s.served.Do(func() { first = true })
	if !first {
		return errors.New("api: Serve called twice")
	}
	hs := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		TLSConfig:         s.tls,
		// HTTP/1.1 only: WebSocket clients upgrade an HTTP/1.1 connection, and a browser
		// that negotiated HTTP/2 would try WebSocket over HTTP/2, which the server lacks.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// The raw connection lets a WebSocket handler bound its kernel send buffer and
		// cut a connection whose close handshake hangs.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	errc := make(chan error, 1)
	go func() { // owned by Serve: ends when hs is shut down, and Serve waits for it
		if s.tls != nil {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	s.log.Info("local API listening", "addr", ln.Addr().String(), "tls", s.tls != nil)

	tick := time.NewTicker(s.o.StatusEvery)
	defer tick.Stop()
	var serveErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case serveErr = <-errc:
			break loop
		case <-tick.C:
			if s.hub.count() > 0 {
				s.hub.broadcast(s.statusMessage(s.hub.lastSeq()))
			}
		}
	}

	deadline := time.Now().Add(ShutdownTimeout)
	s.wsMu.Lock()
	s.wsClosed = true
	close(s.closing)
	s.wsMu.Unlock()
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	// Every WebSocket handler ends within closeGrace of s.closing: its connection is cut
	// if the close handshake has not finished by then.
	s.ws.Wait()
	if serveErr == nil {
		serveErr = <-errc
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// Event implements pipeline.Subscriber. It encodes the event once, counts it and hands
// it to the ring and the clients without waiting for any of them.
func (s *Server) Event(e *event.Event) {
	b, err := json.Marshal(e)
	if err != nil { // an Event always encodes; a failure here is a programming error
		s.log.Error("local API: event not encodable", "seq", e.Seq, "reason", "encode_failed")
		return
	}
	s.metrics.event(e)
	s.cards.read(e)
	s.hub.publish(entry{seq: e.Seq, json: b, live: eventMessage(e.Seq, b, false)})
}

// Channel implements pipeline.Channeler: a payment or insurance code, unmasked, goes to
// the WebSocket clients connected now as a message of its own type, right after its
// (masked) event. It is kept nowhere — not in the ring, /v1/events, a log or a
// metric — so a client that connects later never gets it: such codes are short-lived
// and must not be replayed; the kiosk asks the patient to show the code again.
func (s *Server) Channel(e *event.Event, code string) {
	if e.Code == nil {
		return
	}
	b, err := json.Marshal(struct {
		Type    string `json:"type"`
		Seq     uint64 `json:"seq"`
		EventID string `json:"event_id"`
		Device  string `json:"device"`
		Scheme  string `json:"scheme,omitempty"`
		Code    string `json:"code"`
	}{e.Code.Type, e.Seq, e.EventID, e.Source.Device, e.Code.Scheme, code})
	if err != nil {
		return
	}
	s.hub.broadcast(b)
}

// NotCommitted implements pipeline.FailureObserver: a read whose event could not be
// committed is counted and told to the WebSocket clients connected now, as a
// read_failed message with the reason and its hint, so that the kiosk can send the
// patient to the desk at once. The message says which device and when, nothing of the
// read itself: that is in no durable record, and the kiosk must not act on it.
func (s *Server) NotCommitted(r device.Read, reason string) {
	s.metrics.notCommitted.WithLabelValues(label(codeLabel, reason)).Inc()
	b, err := json.Marshal(struct {
		Type   string    `json:"type"`
		Device string    `json:"device"`
		Kind   string    `json:"kind,omitempty"`
		Reason string    `json:"reason"`
		Hint   string    `json:"hint,omitempty"`
		At     time.Time `json:"at"`
	}{"read_failed", r.Device, r.Kind, reason, hints.For(reason), r.At})
	if err != nil {
		return
	}
	s.hub.broadcast(b)
}

// DeviceState records a device's state change for metrics and tells WebSocket clients.
// It does not block; call it from the daemon's device sink.
func (s *Server) DeviceState(st device.State) {
	s.metrics.deviceState(st)
	s.cards.state(st)
	b, _ := json.Marshal(struct {
		Type   string      `json:"type"`
		Device DeviceState `json:"device"`
	}{"device", deviceJSON(st)})
	s.hub.broadcast(b)
}

// MaxWSClients bounds the WebSocket connections held at once. A kiosk needs one or two;
// a page with a reconnect bug that never closes its old sockets would otherwise grow
// the agent by a goroutine set and a buffer per connection until the machine suffers.
const MaxWSClients = 64

// enterWS counts a WebSocket handler in and returns "", or the reason it may not run:
// the server is stopping, or MaxWSClients are connected. leaveWS counts it out.
func (s *Server) enterWS() string {
	s.wsMu.Lock()
	defer s.wsMu.Unlock()
	switch {
	case s.wsClosed:
		return dropStopping
	case s.wsActive >= MaxWSClients:
		return tooManyClients
	}
	s.wsActive++
	s.ws.Add(1)
	return ""
}

func (s *Server) leaveWS() {
	s.wsMu.Lock()
	s.wsActive--
	s.wsMu.Unlock()
	s.ws.Done()
}

// ObserveVerify records how long one offline verification took.
func (s *Server) ObserveVerify(d time.Duration) { s.metrics.verify.Observe(d.Seconds()) }

// ObserveCommit records one journal commit of n events.
func (s *Server) ObserveCommit(d time.Duration, n int) {
	s.metrics.commit.Observe(d.Seconds())
	s.metrics.commitEvents.Add(float64(n))
}

// ObserveDelivery records how long an event waited in the outbox before the platform
// accepted it.
func (s *Server) ObserveDelivery(d time.Duration) { s.metrics.delivery.Observe(d.Seconds()) }

// DeviceState is a device's state as the API shows it (WebSocket "device" messages).
type DeviceState struct {
	Device string    `json:"device"`
	State  string    `json:"state"`
	Reason string    `json:"reason,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Hint   string    `json:"hint,omitempty"` // plain-language fix for Reason (agent/hints)
	At     time.Time `json:"at"`
}

func deviceJSON(st device.State) DeviceState {
	return DeviceState{Device: st.Device, State: st.State, Reason: st.Reason, Detail: st.Detail, Hint: st.Hint, At: st.At}
}

func (s *Server) routes() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	m.Handle("GET /demo/", demoHandler())
	m.Handle("GET /v1/status", s.access.token(http.HandlerFunc(s.handleStatus)))
	m.Handle("GET /v1/events", s.access.token(http.HandlerFunc(s.handleEvents)))
	m.Handle("GET /v1/ws", s.access.token(http.HandlerFunc(s.handleWS)))
	m.Handle("POST /v1/devices/{name}/trigger", s.access.token(s.handleTrigger(true)))
	m.Handle("POST /v1/devices/{name}/untrigger", s.access.token(s.handleTrigger(false)))
	m.Handle("POST /v1/devices/{name}/lend", s.access.token(http.HandlerFunc(s.handleLend)))
	m.Handle("POST /v1/devices/{name}/reclaim", s.access.token(http.HandlerFunc(s.handleReclaim)))
	m.Handle("GET /metrics", s.access.token(s.metrics.handler()))
	s.applicationRoutes(m)
	m.Handle("GET /compat/v1/sscard", s.access.token(http.HandlerFunc(s.handleSSCard)))
	return s.access.outer(m)
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(s.statusJSON(s.hub.lastSeq()))
}

// statusJSON is the provider's status with the API's own part and the build added;
// lastSeq is given as api.last_seq.
func (s *Server) statusJSON(lastSeq uint64) []byte {
	b, err := json.Marshal(s.o.Status())
	if err != nil {
		b = []byte(`{}`)
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return b // not an object: served as the provider made it
	}
	if _, ok := m["api"]; !ok {
		m["api"], _ = json.Marshal(map[string]any{"clients": s.hub.count(), "last_seq": lastSeq})
	}
	if _, ok := m["build"]; !ok && s.o.Build != nil {
		m["build"], _ = json.Marshal(s.o.Build)
	}
	out, _ := json.Marshal(m)
	return out
}

func (s *Server) statusMessage(lastSeq uint64) []byte {
	st := s.statusJSON(lastSeq)
	b := make([]byte, 0, len(st)+32)
	b = append(b, `{"type":"status","status":`...)
	b = append(b, st...)
	return append(b, '}')
}

// apiError is the body of every error answer.
type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
}

func writeError(w http.ResponseWriter, code int, reason, msg string) {
	writeJSON(w, code, apiError{Error: reason, Message: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

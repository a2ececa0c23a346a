package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

const (
	// writeTimeout: a single message the client has not taken in this long marks it as
	// slow even before its queue fills.
	writeTimeout = 5 * time.Second
	// dropGrace is how long a dropped slow client has to take the error message and the
	// close frame (it may just have been paused) before its connection is cut.
	dropGrace = 5 * time.Second
	// closeGrace is the same at shutdown, where the whole stop has one second.
	closeGrace = 500 * time.Millisecond
	// wsSendBuffer bounds the kernel's send buffer for a WebSocket connection. Left to
	// auto-tuning it grows to megabytes, and a stalled client would then hide thousands
	// of events in the kernel before its own queue (Options.WSBuffer) even began to fill.
	wsSendBuffer = 64 << 10
)

// queued is one message in a client's queue; seq is the event's, 0 for other messages.
type queued struct {
	seq uint64
	msg []byte
}

// errorMessage is the WebSocket "error" message.
type errorMessage struct {
	Type        string `json:"type"` // "error"
	Error       string `json:"error"`
	Message     string `json:"message,omitempty"`
	FirstSeq    uint64 `json:"first_seq,omitempty"`
	LastSeq     uint64 `json:"last_seq,omitempty"`
	ResumeAfter uint64 `json:"resume_after,omitempty"`
}

// handleWS: GET /v1/ws[?after=SEQ]. The client first gets a "status" message (its
// api.last_seq: every event after it comes on this connection); with
// after, the held events with seq > after (marked "replay": true, preceded by an
// "error" events_missed if some are no longer held); then every new event, device
// change and periodic status, in order. Messages from the client are not expected: any
// data message closes the connection.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	var after uint64
	replay := false
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_after", "after must be a seq (a non-negative integer)")
			return
		}
		after, replay = n, true
	}
	if !s.enterWS() {
		writeError(w, http.StatusServiceUnavailable, dropStopping, "the agent is stopping")
		return
	}
	defer s.ws.Done()
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: []string{SubprotocolV1},
		// The Origin was checked against api.allowed_origins by access.outer; the
		// library's own rule (same host only) would refuse allowed kiosk origins.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return // Accept has answered the request
	}
	raw, _ := r.Context().Value(connKey{}).(net.Conn)
	limitSendBuffer(raw)

	cl := newClient(s.o.WSBuffer)
	s.metrics.wsClients.Inc()
	defer s.metrics.wsClients.Dec()
	ctx := c.CloseRead(context.Background()) // done when the peer closes or the connection fails
	win := s.hub.join(cl, after, replay)
	defer s.hub.leave(cl)

	sent, reason := s.pump(ctx, c, cl, win)
	switch reason {
	case "":
		c.CloseNow() // the peer went away, or a write failed: nothing left to say
	case dropSlow:
		s.log.Warn("local API: WebSocket client dropped", "reason", dropSlow, "resume_after", sent, "remote", r.RemoteAddr)
		s.closeWith(c, raw, dropGrace, websocket.StatusPolicyViolation, reason, sent)
	case dropStopping:
		s.closeWith(c, raw, closeGrace, websocket.StatusGoingAway, reason, sent)
	}
}

// pump writes the client's messages until it must stop; it returns the last event seq
// written and why the server ends the connection ("" when the client did).
func (s *Server) pump(ctx context.Context, c *websocket.Conn, cl *client, win window) (sent uint64, reason string) {
	write := func(msg []byte) bool {
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		return c.Write(wctx, websocket.MessageText, msg) == nil
	}
	stop := func() string {
		select {
		case <-cl.dropped:
			return cl.reason
		case <-s.closing:
			return dropStopping
		default:
			return ""
		}
	}
	// The first status carries the seq this connection starts after: every later event
	// comes on it, so a live-only client knows where to resume from.
	if !write(s.statusMessage(win.last)) {
		return 0, ""
	}
	if win.missed {
		m, _ := json.Marshal(errorMessage{Type: "error", Error: "events_missed", FirstSeq: win.first, LastSeq: win.last,
			Message: "events after the requested seq and before first_seq are no longer held here; the platform has them"})
		if !write(m) {
			return 0, ""
		}
	}
	for _, e := range win.entries {
		if r := stop(); r != "" {
			return sent, r
		}
		if !write(eventMessage(e.seq, e.json, true)) {
			return sent, stop()
		}
		sent = e.seq
	}
	for {
		// A dropped client gets nothing more from its queue, even what is already there:
		// it resumes by seq instead.
		if r := stop(); r != "" {
			return sent, r
		}
		select {
		case q := <-cl.send:
			if !write(q.msg) {
				return sent, stop()
			}
			if q.seq != 0 {
				sent = q.seq
			}
		case <-cl.dropped:
			return sent, cl.reason
		case <-s.closing:
			return sent, dropStopping
		case <-ctx.Done():
			return sent, ""
		}
	}
}

// closeWith tells the client why it is disconnected and where to resume, then closes;
// a client that takes neither within grace (or closeGrace once the server stops) has
// its connection cut.
func (s *Server) closeWith(c *websocket.Conn, raw net.Conn, grace time.Duration, code websocket.StatusCode, reason string, sent uint64) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	if raw != nil {
		wg.Add(1)
		go func() { // owned by closeWith, which waits for it
			defer wg.Done()
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-done:
				return
			case <-t.C:
			case <-s.closing:
				t.Reset(closeGrace)
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
			raw.Close()
		}()
	}
	msg := "resume with after=<the last seq you processed>"
	if reason == dropStopping {
		msg = "the agent is stopping; reconnect with after=<the last seq you processed>"
	}
	m, _ := json.Marshal(errorMessage{Type: "error", Error: reason, Message: msg, ResumeAfter: sent})
	wctx, cancel := context.WithTimeout(context.Background(), grace)
	err := c.Write(wctx, websocket.MessageText, m)
	cancel()
	if err == nil {
		c.Close(code, reason)
	} else {
		c.CloseNow()
	}
	close(done)
	wg.Wait()
}

func limitSendBuffer(raw net.Conn) {
	if tc, ok := raw.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetWriteBuffer(wsSendBuffer)
	}
}

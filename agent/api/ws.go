package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// A slow client, and what the server promises about it. A client is dropped as
// "slow_consumer" when its queue is full at a publish, or when one message has waited
// writeTimeout for it (a trickle of events may never fill the queue). The drop is
// counted (ehc_agent_api_websocket_dropped_total) and logged with resume_after, always.
// From then on the client gets nothing but the error message and the close frame
// (1008); but a client that does not read cannot receive even those, and nothing waits
// on it past dropGrace from the drop: its connection is then cut, and it sees an
// abnormal closure. Either way it resumes with after=<last seq it processed> and misses
// nothing, and the pipeline never waited for it (publish only offers to its queue).
const (
	// writeTimeout: a single message the client has not taken in this long marks it as
	// slow even before its queue fills.
	writeTimeout = 5 * time.Second
	// dropGrace is how long a dropped slow client has, from its drop, to take the message
	// in flight, the error message and the close frame (it may just have been paused)
	// before its connection is cut.
	dropGrace = 5 * time.Second
	// closeGrace is the same at shutdown, where the whole stop has one second: it also
	// cuts a write still blocked on a client when the server begins to stop.
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
	switch s.enterWS() {
	case dropStopping:
		writeError(w, http.StatusServiceUnavailable, dropStopping, "the agent is stopping")
		return
	case tooManyClients:
		s.metrics.wsDropped.WithLabelValues(tooManyClients).Inc()
		s.log.Warn("local API: WebSocket refused", "reason", tooManyClients, "limit", MaxWSClients)
		writeError(w, http.StatusServiceUnavailable, tooManyClients,
			fmt.Sprintf("%d WebSocket connections are open already: close the ones you no longer read", MaxWSClients))
		return
	}
	defer s.leaveWS()
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

	// Writes have no deadline of their own: the watchdog bounds every wait on this client
	// once it is dropped or the server stops, by cutting the connection.
	done, watched := make(chan struct{}), make(chan struct{})
	go func() { // owned by this handler, which waits for it
		defer close(watched)
		s.watchdog(c, raw, cl, done)
	}()
	defer func() {
		close(done)
		<-watched
	}()

	sent, reason := s.pump(ctx, c, cl, win)
	switch reason {
	case "":
		c.CloseNow() // the peer went away: nothing left to say
	case dropSlow:
		s.log.Warn("local API: WebSocket client dropped", "reason", dropSlow, "resume_after", sent, "remote", r.RemoteAddr)
		s.closeWith(c, websocket.StatusPolicyViolation, reason, sent)
	case dropStopping:
		s.closeWith(c, websocket.StatusGoingAway, reason, sent)
	}
}

// watchdog cuts the connection dropGrace after the client is dropped, or closeGrace
// after the server begins to stop (whichever ends first), unless the handler is done
// before. Cutting the raw connection ends at once any write blocked on the client, and
// the close handshake, whose own time-outs (5 s each) would outlast the stop.
func (s *Server) watchdog(c *websocket.Conn, raw net.Conn, cl *client, done <-chan struct{}) {
	grace := closeGrace
	closing := s.closing
	select {
	case <-done:
		return
	case <-cl.dropped:
		grace = dropGrace
	case <-closing:
		closing = nil
	}
	deadline := time.Now().Add(grace)
	t := time.NewTimer(grace)
	defer t.Stop()
	for fired := false; !fired; {
		select {
		case <-done:
			return
		case <-closing: // stopping while a dropped client has its grace: the stop's may be shorter
			closing = nil
			if d := time.Now().Add(closeGrace); d.Before(deadline) {
				deadline = d
				t.Reset(closeGrace)
			}
		case <-t.C:
			fired = true
		}
	}
	if raw != nil {
		raw.Close()
	} else {
		c.CloseNow() // an embedded Handler without Serve's ConnContext
	}
}

// pump writes the client's messages until it must stop; it returns the last event seq
// written and why the server ends the connection ("" when the client did).
func (s *Server) pump(ctx context.Context, c *websocket.Conn, cl *client, win window) (sent uint64, reason string) {
	write := func(msg []byte) bool {
		// A deadline on the write itself would make coder/websocket close the connection
		// mid-frame when it passes, leaving no way to tell the client why. So a message
		// not taken in writeTimeout drops the client instead, which gives it dropGrace
		// more to take this message, the reason and the close frame (watchdog).
		t := time.AfterFunc(writeTimeout, func() {
			select {
			case <-s.closing: // it is told agent_stopping instead, within closeGrace
			default:
				s.hub.drop(cl, dropSlow)
			}
		})
		defer t.Stop()
		return c.Write(ctx, websocket.MessageText, msg) == nil
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

// closeWith tells the client why it is disconnected and where to resume, then closes.
// It waits on the client only until the watchdog cuts the connection (dropGrace after a
// drop, closeGrace after the server begins to stop); a cut write or close fails at once.
func (s *Server) closeWith(c *websocket.Conn, code websocket.StatusCode, reason string, sent uint64) {
	msg := "resume with after=<the last seq you processed>"
	if reason == dropStopping {
		msg = "the agent is stopping; reconnect with after=<the last seq you processed>"
	}
	m, _ := json.Marshal(errorMessage{Type: "error", Error: reason, Message: msg, ResumeAfter: sent})
	if c.Write(context.Background(), websocket.MessageText, m) == nil {
		c.Close(code, reason)
	} else {
		c.CloseNow()
	}
}

func limitSendBuffer(raw net.Conn) {
	if tc, ok := raw.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetWriteBuffer(wsSendBuffer)
	}
}

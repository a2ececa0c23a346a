package api

import (
	"strconv"
	"sync"
)

// entry is one committed event as the API hands it out. The JSON is made once, on the
// pipeline goroutine, and shared by every long-poll answer and WebSocket client: the
// event pointer itself may be reused or changed by others after Event returns.
type entry struct {
	seq  uint64
	json []byte // the event object
	live []byte // the WebSocket message {"type":"event",...} sent to connected clients
}

// hub holds the recent events and the connected WebSocket clients. Every method takes
// mu only for a bounded amount of work (no I/O, no blocking channel operation), because
// publish runs on the pipeline goroutine and must never hold the pipeline up.
type hub struct {
	mu      sync.Mutex
	ring    []entry // circular; len(ring) is the capacity
	head, n int     // oldest entry, number held
	last    uint64  // newest seq published, or the seq committed before this process started
	wake    chan struct{}
	clients map[*client]struct{}
	onDrop  func(reason string) // counts drops as they happen; must not block
}

func newHub(size int, startSeq uint64, onDrop func(string)) *hub {
	return &hub{ring: make([]entry, size), last: startSeq, wake: make(chan struct{}), clients: map[*client]struct{}{}, onDrop: onDrop}
}

// window describes what a reader asking for seq > after can get.
type window struct {
	entries []entry
	missed  bool   // some events after `after` are no longer held
	first   uint64 // oldest seq held (or last+1 when none is held)
	last    uint64 // newest seq committed
}

// since returns the held events with seq > after, and a channel closed at the next publish.
func (h *hub) since(after uint64) (window, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sinceLocked(after), h.wake
}

func (h *hub) sinceLocked(after uint64) window {
	w := window{last: h.last, first: h.last + 1}
	if h.n > 0 {
		w.first = h.ring[h.head].seq
	}
	if after >= h.last {
		return w
	}
	w.missed = after+1 < w.first
	for i := 0; i < h.n; i++ {
		e := h.ring[(h.head+i)%len(h.ring)]
		if e.seq > after {
			w.entries = append(w.entries, e)
		}
	}
	return w
}

// publish records e and offers it to every client. A client whose buffer is full is
// dropped here, on the spot: waiting for it would stall the pipeline and every other
// client behind it.
func (h *hub) publish(e entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == len(h.ring) {
		h.head = (h.head + 1) % len(h.ring)
		h.n--
	}
	h.ring[(h.head+h.n)%len(h.ring)] = e
	h.n++
	if e.seq > h.last {
		h.last = e.seq
	}
	close(h.wake)
	h.wake = make(chan struct{})
	h.fanoutLocked(queued{seq: e.seq, msg: e.live})
}

// broadcast offers a message that is not an event (device change, status) to every client.
func (h *hub) broadcast(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fanoutLocked(queued{msg: msg})
}

func (h *hub) fanoutLocked(q queued) {
	for c := range h.clients {
		select {
		case c.send <- q:
		default:
			h.dropLocked(c, dropSlow)
		}
	}
}

// drop disconnects c for reason from any goroutine: its connection's handler does it
// to a client that has not taken a message for writeTimeout.
func (h *hub) drop(c *client, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(c, reason)
}

// dropLocked counts a client once, however many times and ways it is found slow.
func (h *hub) dropLocked(c *client, reason string) {
	delete(h.clients, c)
	if c.drop(reason) && h.onDrop != nil {
		h.onDrop(reason)
	}
}

// join registers c for live messages and returns what it must be sent first: the held
// events after `after`. Both happen under one lock so nothing falls between replay and
// live, and nothing is sent twice.
func (h *hub) join(c *client, after uint64, replay bool) window {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients[c] = struct{}{}
	if !replay {
		return window{last: h.last, first: h.last + 1}
	}
	return h.sinceLocked(after)
}

func (h *hub) leave(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

func (h *hub) lastSeq() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// Reasons a WebSocket client is disconnected by the server.
const (
	dropSlow     = "slow_consumer"
	dropStopping = "agent_stopping"
	// tooManyClients: a WebSocket refused because MaxWSClients are connected.
	tooManyClients = "too_many_clients"
)

// client is one WebSocket connection's queue. The hub fills send; the connection's own
// handler goroutine empties it.
type client struct {
	send    chan queued
	dropped chan struct{}
	once    sync.Once
	reason  string // set before dropped is closed
}

func newClient(buffer int) *client {
	return &client{send: make(chan queued, buffer), dropped: make(chan struct{})}
}

// drop reports whether this call dropped c (false: it already was).
func (c *client) drop(reason string) (first bool) {
	c.once.Do(func() {
		c.reason = reason
		close(c.dropped)
		first = true
	})
	return first
}

// joinJSON is the JSON array of the entries' events.
func joinJSON(es []entry) []byte {
	n := 2
	for _, e := range es {
		n += len(e.json) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, e := range es {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.json...)
	}
	return append(b, ']')
}

// eventMessage is the WebSocket message for an event; replay marks one sent from the
// ring on (re)connection rather than live, so that a kiosk does not greet a patient who
// has already left.
func eventMessage(seq uint64, ev []byte, replay bool) []byte {
	b := make([]byte, 0, len(ev)+64)
	b = append(b, `{"type":"event","seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	if replay {
		b = append(b, `,"replay":true`...)
	}
	b = append(b, `,"event":`...)
	b = append(b, ev...)
	return append(b, '}')
}

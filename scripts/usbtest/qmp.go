package usbtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// QMP is a client of QEMU's machine protocol: one command at a time, events kept for
// WaitEvent. Its reader goroutine ends when the connection closes (Close, or QEMU exits).
type QMP struct {
	conn net.Conn
	mu   sync.Mutex // one command at a time: replies carry no id to match them by

	replies chan qmpMsg
	events  chan qmpMsg
	done    chan struct{}
}

type qmpMsg struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
	QMP   json.RawMessage `json:"QMP"`
}

// DialQMP connects to QEMU's QMP socket, retrying until ctx ends (QEMU creates the
// socket a moment after it starts), and leaves capabilities negotiation done.
func DialQMP(ctx context.Context, socket string) (*QMP, error) {
	var conn net.Conn
	for {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, "unix", socket)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("qmp: %w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	q := &QMP{conn: conn, replies: make(chan qmpMsg, 1), events: make(chan qmpMsg, 64), done: make(chan struct{})}
	greeting := make(chan struct{})
	go q.read(greeting)
	select {
	case <-greeting:
	case <-ctx.Done():
		q.Close()
		return nil, fmt.Errorf("qmp: no greeting: %w", ctx.Err())
	}
	if _, err := q.Execute(ctx, "qmp_capabilities", nil); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

func (q *QMP) read(greeting chan struct{}) {
	defer close(q.done)
	sc := bufio.NewScanner(q.conn)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var m qmpMsg
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		switch {
		case m.QMP != nil:
			close(greeting)
		case m.Event != "":
			select {
			case q.events <- m:
			default: // nobody waits for this many events: the oldest are not needed
			}
		default:
			q.replies <- m
		}
	}
}

// Execute runs one command and returns its "return" value.
func (q *QMP) Execute(ctx context.Context, cmd string, args any) (json.RawMessage, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	select {
	case m := <-q.replies:
		if m.Error != nil {
			return nil, fmt.Errorf("qmp %s: %s: %s", cmd, m.Error.Class, m.Error.Desc)
		}
		return m.Return, nil
	case <-q.done:
		return nil, fmt.Errorf("qmp %s: connection closed", cmd)
	case <-ctx.Done():
		return nil, fmt.Errorf("qmp %s: %w", cmd, ctx.Err())
	}
}

// WaitEvent waits for an event named name, discarding others.
func (q *QMP) WaitEvent(ctx context.Context, name string) (json.RawMessage, error) {
	for {
		select {
		case m := <-q.events:
			if m.Event == name {
				return m.Data, nil
			}
		case <-q.done:
			return nil, errors.New("qmp: connection closed waiting for " + name)
		case <-ctx.Done():
			return nil, fmt.Errorf("qmp: waiting for %s: %w", name, ctx.Err())
		}
	}
}

// Close closes the connection; the reader goroutine ends with it.
func (q *QMP) Close() error {
	err := q.conn.Close()
	<-q.done
	return err
}

// Type types s on the guest's keyboard through input-send-event: each character as key
// down and key up, '\n' as Enter, Shift pressed and released only where the text
// changes case, as a person types. QEMU's USB keyboard queues 16 key events and drops
// what comes beyond them, handing the guest one per poll, so characters go one at a
// time, pace apart.
func (q *QMP) Type(ctx context.Context, s string, pace time.Duration) error {
	shifted := false
	for i := 0; i <= len(s); i++ {
		var ev []any
		key, shift := "", false
		if i < len(s) {
			var ok bool
			if key, shift, ok = qcode(s[i]); !ok {
				return fmt.Errorf("qmp: no key types %q", s[i])
			}
		}
		if shift != shifted {
			ev = append(ev, keyEvent("shift", shift))
			shifted = shift
		}
		if key != "" {
			ev = append(ev, keyEvent(key, true), keyEvent(key, false))
		}
		if len(ev) == 0 {
			continue
		}
		if _, err := q.Execute(ctx, "input-send-event", map[string]any{"events": ev}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pace):
		}
	}
	return nil
}

func keyEvent(qcode string, down bool) map[string]any {
	return map[string]any{"type": "key", "data": map[string]any{
		"down": down, "key": map[string]any{"type": "qcode", "data": qcode},
	}}
}

// qcode is QEMU's name of the US key that types c, and whether Shift is needed.
func qcode(c byte) (key string, shift, ok bool) {
	switch {
	case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return string(c), false, true
	case 'A' <= c && c <= 'Z':
		return string(c - 'A' + 'a'), true, true
	}
	const shifted = `!@#$%^&*()`
	if i := strings.IndexByte(shifted, c); i >= 0 {
		return string("1234567890"[i]), true, true
	}
	for _, k := range []struct {
		plain, shifted byte
		name           string
	}{
		{'-', '_', "minus"}, {'=', '+', "equal"}, {'[', '{', "bracket_left"}, {']', '}', "bracket_right"},
		{'\\', '|', "backslash"}, {';', ':', "semicolon"}, {'\'', '"', "apostrophe"}, {'`', '~', "grave_accent"},
		{',', '<', "comma"}, {'.', '>', "dot"}, {'/', '?', "slash"}, {' ', ' ', "spc"}, {'\n', '\n', "ret"}, {'\t', '\t', "tab"},
	} {
		if c == k.plain {
			return k.name, false, true
		}
		if c == k.shifted {
			return k.name, true, true
		}
	}
	return "", false, false
}

package fleet

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// Verbs a terminal answers on …/cmd/<verb>.
const (
	VerbTrigger     = "trigger"
	VerbUntrigger   = "untrigger"
	VerbLend        = "lend"
	VerbReclaim     = "reclaim"
	VerbReload      = "reload"
	VerbResyncTrust = "resync-trust"
	VerbDoctor      = "doctor"
)

// Verbs lists every verb, in the order the docs give them.
var Verbs = []string{VerbTrigger, VerbUntrigger, VerbLend, VerbReclaim, VerbReload, VerbResyncTrust, VerbDoctor}

func knownVerb(v string) bool {
	for _, k := range Verbs {
		if k == v {
			return true
		}
	}
	return false
}

// idPattern is what a terminal id and a request id may be: the configuration's terminal
// id rule, which also keeps MQTT's level separator and wildcards out of topic levels.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Topics names one terminal's topics under a prefix.
type Topics struct {
	Prefix   string // e.g. "ehc/hospital-a", validated by CheckPrefix
	Terminal string // the terminal id, one topic level
}

func (t Topics) base() string { return t.Prefix + "/" + t.Terminal }

// Status is the retained status topic.
func (t Topics) Status() string { return t.base() + "/status" }

// Events is the topic of masked verdict summaries.
func (t Topics) Events() string { return t.base() + "/events" }

// Command is the topic a command with this verb is sent to.
func (t Topics) Command(verb string) string { return t.base() + "/cmd/" + verb }

// Commands is the filter the terminal subscribes to.
func (t Topics) Commands() string { return t.base() + "/cmd/+" }

// Reply is the topic the answer to request id is published on.
func (t Topics) Reply(requestID string) string { return t.base() + "/reply/" + requestID }

// verbOf returns the verb of a command topic of t, or "" when topic is not one.
func (t Topics) verbOf(topic string) string {
	v, ok := strings.CutPrefix(topic, t.base()+"/cmd/")
	if !ok || strings.Contains(v, "/") {
		return ""
	}
	return v
}

// AllStatuses is the filter that reads every terminal's status under prefix.
func AllStatuses(prefix string) string { return prefix + "/+/status" }

// CheckPrefix reports why p cannot be a topic prefix: it must be one or more non-empty
// levels of printable ASCII without MQTT wildcards, not start with '$' (reserved for
// the broker) or '/', and stay short enough to leave room for the terminal's levels.
func CheckPrefix(p string) error {
	switch {
	case p == "":
		return errors.New("must not be empty")
	case len(p) > 128:
		return fmt.Errorf("%d bytes is longer than 128", len(p))
	case p[0] == '$':
		return fmt.Errorf("%q: topics starting with $ belong to the broker", p)
	}
	for _, level := range strings.Split(p, "/") {
		if level == "" {
			return fmt.Errorf("%q has an empty level (leading, trailing or double /)", p)
		}
		for _, c := range level {
			if c == '+' || c == '#' || c <= ' ' || c > '~' {
				return fmt.Errorf("%q: levels are printable ASCII without spaces, + or #", p)
			}
		}
	}
	return nil
}

// CheckID reports why id cannot be a terminal id or a request id (one topic level).
func CheckID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%q must be 1-64 of A-Z a-z 0-9 . _ -", id)
	}
	return nil
}

// ParseBroker checks a broker URL and fills in the default port. mqtts:// (also tls://,
// ssl://) is MQTT over TLS, default port 8883; mqtt:// (also tcp://) is plain MQTT and
// allowed only to a loopback host, for tests and a broker on the same machine.
func ParseBroker(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %v", err)
	}
	if u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q must be scheme://host[:port], without user, path, query or fragment", raw)
	}
	u.Path = ""
	port := ""
	switch u.Scheme {
	case "mqtts", "tls", "ssl":
		port = "8883"
	case "mqtt", "tcp":
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("%q: plain MQTT only to a loopback host; use mqtts://", raw)
		}
		port = "1883"
	default:
		return nil, fmt.Errorf("%q: scheme must be mqtts (or mqtt on loopback)", raw)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	return u, nil
}

// IsTLS reports whether a URL from ParseBroker connects over TLS.
func IsTLS(u *url.URL) bool { return u.Scheme == "mqtts" || u.Scheme == "tls" || u.Scheme == "ssl" }

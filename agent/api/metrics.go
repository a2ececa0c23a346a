package api

import (
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ehc-agent/ehc-agent/agent/pipeline"
	"github.com/ehc-agent/ehc-agent/drivers/device"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

// metrics are the agent's Prometheus metrics, in a registry of their own (no global
// state). Label values come only from closed vocabularies (code types, verdict reasons,
// device states) and configured device names, and each is checked against a pattern
// that no name, ID number or code can pass: a metric is scraped, stored and shipped far
// beyond the terminal.
type metrics struct {
	reg          *prometheus.Registry
	scans        *prometheus.CounterVec
	verdicts     *prometheus.CounterVec
	latency      prometheus.Histogram
	verify       prometheus.Histogram
	commit       prometheus.Histogram
	commitEvents prometheus.Counter
	delivery     prometheus.Histogram
	devState     *prometheus.GaugeVec
	reconnects   *prometheus.CounterVec
	lends        *prometheus.CounterVec
	reclaims     *prometheus.CounterVec
	wsClients    prometheus.Gauge
	wsDropped    *prometheus.CounterVec
	notCommitted *prometheus.CounterVec

	mu   sync.Mutex
	last map[string]string // device → last state
	ever map[string]bool   // devices seen connected at least once
	lent map[string]bool   // devices lent since they were last connected: coming back is no reconnect
}

var (
	codeLabel   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)
	deviceLabel = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]{0,63}$`)
)

// label returns v if it matches re, else "other" ("none" for empty).
func label(re *regexp.Regexp, v string) string {
	switch {
	case v == "":
		return "none"
	case re.MatchString(v):
		return v
	}
	return "other"
}

var deviceStates = []string{device.StateConnecting, device.StateConnected, device.StateDisconnected, device.StateStopped, device.StateLent}

func newMetrics(outboxDepth func() float64, reserveInUse func() bool, h *hub) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ehc_agent_scans_total", Help: "Identity events (scans and card reads) by device, source kind and code or card type.",
		}, []string{"device", "kind", "type"}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ehc_agent_verdicts_total", Help: "Verification verdicts by status (valid, invalid, pending) and reason code.",
		}, []string{"status", "reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ehc_agent_event_latency_seconds",
			Help:    "From the last byte of a read to the committed event reaching the local API (verify and journal included).",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2},
		}),
		verify: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ehc_agent_verify_seconds", Help: "Offline verification time of one code.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 14), // 25 µs … 0.2 s
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ehc_agent_journal_commit_seconds",
			Help:    "One journal commit (events made durable, fsync included) before the local API is told; the state_dir's storage sets it.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 14), // 50 µs … 0.4 s
		}),
		commitEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ehc_agent_journal_committed_events_total", Help: "Events made durable by the journal commits (more than one per commit under group commit).",
		}),
		delivery: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ehc_agent_outbox_delivery_seconds", Help: "From an event's commit to its acceptance by the platform.",
			Buckets: prometheus.ExponentialBuckets(0.05, 4, 10), // 50 ms … 3.6 h
		}),
		devState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ehc_agent_device_state", Help: "1 for the state each device is in, 0 for the others.",
		}, []string{"device", "state"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ehc_agent_device_reconnects_total", Help: "Times a device came back (connected again after having been connected).",
		}, []string{"device"}),
		lends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ehc_agent_device_lends_total", Help: "Times a device was lent to another program (its port closed for it).",
		}, []string{"device"}),
		reclaims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ehc_agent_device_lend_ends_total", Help: "Lends that ended, by reason: reclaimed, lend_expired, stopped.",
		}, []string{"device", "reason"}),
		wsClients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ehc_agent_api_websocket_clients", Help: "WebSocket clients connected to the local API.",
		}),
		wsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ehc_agent_api_websocket_dropped_total", Help: "WebSocket clients disconnected by the agent, by reason.",
		}, []string{"reason"}),
		notCommitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ehc_agent_journal_failures_total", Help: "Reads whose event could not be committed, by reason (disk_full, state_dir_lost, journal_failed): the kiosk was told read_failed.",
		}, []string{"reason"}),
		last: map[string]string{}, ever: map[string]bool{}, lent: map[string]bool{},
	}
	m.reg.MustRegister(m.scans, m.verdicts, m.latency, m.verify, m.commit, m.commitEvents, m.delivery, m.devState, m.reconnects, m.lends, m.reclaims, m.wsClients, m.wsDropped, m.notCommitted,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ehc_agent_events_last_seq", Help: "Seq of the newest committed event.",
		}, func() float64 { return float64(h.lastSeq()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if reserveInUse != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ehc_agent_storage_reserve_in_use",
			Help: "1 while state_dir's disk is full and events are committed in the space the agent kept aside: free disk space before it runs out.",
		}, func() float64 {
			if reserveInUse() {
				return 1
			}
			return 0
		}))
	}
	if outboxDepth != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ehc_agent_outbox_depth", Help: "Events committed and not yet accepted by the platform.",
		}, outboxDepth))
	}
	m.wsDropped.WithLabelValues(dropSlow) // present at 0, so that alerts can use rate()
	for _, r := range []string{pipeline.ReasonDiskFull, pipeline.ReasonStateDirLost, pipeline.ReasonJournalFailed} {
		m.notCommitted.WithLabelValues(r)
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *metrics) event(e *event.Event) {
	typ := "unknown"
	if e.Code != nil {
		typ = e.Code.Type
	} else if e.Card != nil {
		typ = e.Card.Kind
	}
	m.scans.WithLabelValues(label(deviceLabel, e.Source.Device), label(codeLabel, e.Source.Kind), label(codeLabel, typ)).Inc()
	if v := e.Verification; v != nil {
		m.verdicts.WithLabelValues(label(codeLabel, v.Status), label(codeLabel, v.Reason)).Inc()
	}
	if !e.OccurredAt.IsZero() {
		if d := time.Since(e.OccurredAt); d >= 0 {
			m.latency.Observe(d.Seconds())
		}
	}
}

func (m *metrics) deviceState(st device.State) {
	dev := label(deviceLabel, st.Device)
	for _, s := range deviceStates {
		v := 0.0
		if s == st.State {
			v = 1
		}
		m.devState.WithLabelValues(dev, s).Set(v)
	}
	m.mu.Lock()
	prev := m.last[dev]
	m.last[dev] = st.State
	if st.State == device.StateLent {
		m.lent[dev] = true
	}
	again := m.ever[dev] && prev != device.StateConnected && !m.lent[dev]
	if st.State == device.StateConnected {
		m.ever[dev] = true
		delete(m.lent, dev)
	}
	m.mu.Unlock()
	// Lends are counted from the states every driver reports, so that a lend asked
	// through the local API, the CLI or the fleet is counted alike.
	switch {
	case st.State == device.StateLent && prev != device.StateLent:
		m.lends.WithLabelValues(dev).Inc()
	case prev == device.StateLent && st.State != device.StateLent:
		m.reclaims.WithLabelValues(dev, label(codeLabel, st.Reason)).Inc()
	}
	if st.State != device.StateConnected {
		return
	}
	if again {
		m.reconnects.WithLabelValues(dev).Inc()
	} else {
		m.reconnects.WithLabelValues(dev).Add(0)
	}
}

// PlatformState is what the metrics show of the agent's link to the platform:
// PLATFORM.md raises auth_failed "in status and metrics" and clock_offset "in status,
// logs and metrics".
type PlatformState struct {
	// AuthFailed: the platform refuses the terminal's signature (401), until an answer
	// past authentication.
	AuthFailed bool
	// ClockOffset is the platform's time minus ours, as last measured from an answer's
	// Date; ClockMeasured is false until an answer carried one.
	ClockOffset   time.Duration
	ClockMeasured bool
	// ClockOffsetExceeded: the offset is beyond platform.clock_offset_limit, so the
	// agent uses the platform's time.
	ClockOffsetExceeded bool
}

// platform registers the platform gauges, read from f at every scrape; nil f (no
// platform configured) registers none.
func (m *metrics) platform(f func() PlatformState) {
	if f != nil {
		m.reg.MustRegister(platformCollector{f})
	}
}

var (
	authFailedDesc = prometheus.NewDesc("ehc_agent_platform_auth_failed",
		"1 while the platform refuses the terminal's signature (401 auth_failed; events are kept and retried), else 0.", nil, nil)
	clockOffsetDesc = prometheus.NewDesc("ehc_agent_clock_offset_seconds",
		"The platform's clock minus the local clock, as last measured from an answer's Date; absent before the first answer.", nil, nil)
	clockExceededDesc = prometheus.NewDesc("ehc_agent_clock_offset_exceeded",
		"1 while the clock offset is beyond platform.clock_offset_limit (clock_offset: the platform's time is used), else 0.", nil, nil)
)

// platformCollector reads the platform state once per scrape, so the three gauges
// agree with each other. The offset is left out until it was measured: a 0 there
// would claim the clocks agree.
type platformCollector struct{ state func() PlatformState }

func (c platformCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- authFailedDesc
	ch <- clockOffsetDesc
	ch <- clockExceededDesc
}

func (c platformCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.state()
	ch <- prometheus.MustNewConstMetric(authFailedDesc, prometheus.GaugeValue, boolValue(st.AuthFailed))
	ch <- prometheus.MustNewConstMetric(clockExceededDesc, prometheus.GaugeValue, boolValue(st.ClockOffsetExceeded))
	if st.ClockMeasured {
		ch <- prometheus.MustNewConstMetric(clockOffsetDesc, prometheus.GaugeValue, st.ClockOffset.Seconds())
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

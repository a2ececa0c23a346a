package api

import "github.com/prometheus/client_golang/prometheus"

// stateReset registers ehc_agent_state_reset, read at every scrape from f: an alert on
// it tells hospital IT that a terminal lost its state database (agent/daemon,
// statereset.go) without anyone reading that kiosk's status.
func (m *metrics) stateReset(f func() float64) {
	if f != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ehc_agent_state_reset",
			Help: "1 while the damaged agent.db of a state reset is kept in state_dir (/v1/status state_reset says where), else 0.",
		}, f))
	}
}

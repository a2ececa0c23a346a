// Package api is the agent's local API for the kiosk application on the same machine
// (INTEGRATION.md is the integrator's guide): status, events by long-poll and WebSocket,
// device triggers, Prometheus metrics and a demo kiosk page.
//
// Who may call it: the server listens on loopback only unless TLS is configured,
// answers only to loopback host names (against DNS rebinding), refuses any request whose
// Origin is not allowed (a browser page of another origin gets nothing, token or not),
// and requires the bearer token of the token file on every endpoint but /healthz and the
// static demo page.
//
// How events flow: the Server is a pipeline.Subscriber. Event encodes each event once
// and puts it in a ring of recent events (for long-polls and WebSocket replay) and in
// each WebSocket client's bounded queue, without ever waiting: a client whose queue is
// full is dropped on the spot (slow_consumer) and resumes by seq. Each client's queue is
// emptied by the goroutine net/http runs its connection on; Serve owns the listener and
// stops everything within ShutdownTimeout.
package api

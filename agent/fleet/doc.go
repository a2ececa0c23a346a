// Package fleet makes a terminal visible to, and steerable by, hospital IT through an
// MQTT broker they already run (a clustered EMQX for a region, a Mosquitto for a site):
// MQTT 5 over TLS with the broker's CA pinned and a client certificate, with
// github.com/eclipse/paho.golang's autopaho. docs/FLEET.md is the deployment page.
//
// Topics, under a configured prefix P, for terminal T (the MQTT client id, and the
// client certificate's CN by which the broker's ACL confines it to P/T/#):
//
//	P/T/status          retained, QoS 1, published by T: Status as JSON — "online" with
//	                    devices, trust versions and staleness, outbox depth and oldest
//	                    age, uplink and clock offset, build; or "offline" with a reason.
//	                    The last will puts "offline, connection_lost" there when T
//	                    vanishes; a clean stop puts "offline, stopped" there itself.
//	P/T/events          QoS 0, optional: one Verdict per identity event — masked verdict
//	                    summaries for dashboards, no identity and no code, never a path
//	                    of events to the platform.
//	P/T/cmd/<verb>      QoS 1, published by operators: a signed Command.
//	P/T/reply/<req id>  QoS 1, published by T: the Reply to request <req id>.
//
// Guarantees:
//   - Status is published when a connection comes up, then whenever it changed
//     (looked at once per MinInterval, so at most once a second) and at least every
//     Heartbeat (5 min); never while the broker is away, and nothing is queued for it.
//   - A command runs only if its SM2 signature (SignedString) verifies with the fleet
//     key pinned in configuration, it names this terminal and the topic's verb, its ts
//     is within CommandWindow (60 s) of the terminal's trusted clock and not before the
//     agent started, and its nonce was not seen before. Every other command is refused
//     with a reply giving one of the Reason… codes (unless it is so malformed that it
//     has no request id to answer to), and nothing is run.
//   - Commands run one at a time, in arrival order, each within CommandTimeout.
//   - Nothing here ever blocks the agent's pipeline: Event only queues (bounded; full
//     means dropped and counted), and the broker being away changes nothing for the
//     kiosk or the platform.
//   - A broker restart is met with reconnection after a random pause, growing
//     exponentially with jitter while it stays away, so a fleet does not return in
//     one instant (see backoff).
//   - Goroutines: Run starts three (status, commands, events) and autopaho's, and
//     returns only after all have ended. Operator's connection ends with Close.
package fleet

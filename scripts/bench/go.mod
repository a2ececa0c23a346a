module github.com/ehc-agent/ehc-agent/scripts/bench

go 1.26.8

require (
	github.com/ehc-agent/ehc-agent v0.0.0
	github.com/emmansun/gmsm v0.44.1
	github.com/tjfoc/gmsm v1.4.1
)

require (
	go.etcd.io/bbolt v1.4.3 // indirect
	golang.org/x/crypto v0.54.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

// The agent's packages from this work tree: the comparison measures the code being
// shipped, and the agent's own module never depends on tjfoc/gmsm.
replace github.com/ehc-agent/ehc-agent => ../..

//go:build !windows

package main

// Outside Windows the agent is a plain process under its service manager (systemd:
// configs/ehc-agent.service, with sd_notify in agent/daemon/systemd.go), so the run
// command is left as it is. runUnderService and rotatingLog are still compiled here so
// that their tests run on every platform.

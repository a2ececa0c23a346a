package outbox

// Rewrite writes the floor's value to its file again, whether or not the file is still
// there: after state_dir was deleted under a running agent (agent/daemon, statelost.go),
// the floor the agent holds in memory is the only record of the highest seq reserved.
func (f *Floor) Rewrite() error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reserved == 0 {
		return nil
	}
	return writeFloor(f.path, f.reserved)
}

package probe

// Idle says why the collector has nothing to do: no targets configured.
// The collector status then reads "idle", not "up" (collector.Idler).
func (c *Collector) Idle() string {
	if len(c.targets) == 0 {
		return "no targets configured (collectors.probe.targets)"
	}
	return ""
}

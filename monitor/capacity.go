package monitor

// Capacity is the connection capacity of an instance whose NICs report a
// connection-tracking allowance (AWS ENA >= 2.8.1).
type Capacity struct {
	// Available is conntrack_allowance_available summed over interfaces.
	Available uint64
	// Tracked are the connections the instance tracks now (the EC2 guide's
	// `ss | awk` count, netsight_sockets_tracked_connections).
	Tracked uint64
	// Supported is Available + Tracked: "total connections supported".
	Supported uint64
	// Utilisation is Tracked / Supported; valid only when Supported > 0.
	Utilisation float64
}

// NICCapacity computes the capacity from the allowance still available and
// the connections tracked now.
func NICCapacity(available, tracked uint64) Capacity {
	c := Capacity{Available: available, Tracked: tracked, Supported: available + tracked}
	if c.Supported > 0 {
		c.Utilisation = float64(tracked) / float64(c.Supported)
	}
	return c
}

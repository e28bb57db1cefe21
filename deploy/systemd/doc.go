// Package systemd tests the hardened unit deploy/systemd/netsight.service:
// systemd-analyze scores its exposure and verifies its syntax. The unit's
// capability set is run for real by deploy/helm's setpriv test.
package systemd

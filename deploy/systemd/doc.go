// Package systemd tests the hardened unit deploy/systemd/netsight.service:
// systemd-analyze scores its exposure and verifies its syntax, and a lab
// test boots a minimal Debian tree (deploy/systemd/rootfs.sh) with
// systemd-nspawn, installs the .rpm into it and lets a real systemd start
// the unit: every default collector must come up under the unit's exact
// capabilities and SystemCallFilter.
package systemd

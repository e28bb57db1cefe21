// Package nic exports the ethtool statistics of every network interface
// (ethtool -S), with the AWS ENA "allowance" statistics typed and named:
// the *_allowance_exceeded counts as reset-safe counters (the driver restarts
// them at a device reset; netsight keeps a monotonic total) and
// conntrack_allowance_available as a gauge. With the sockets package it
// derives the instance's connection-tracking capacity (the EC2 connection-tracking guide's "total
// connections supported") and its utilisation.
package nic

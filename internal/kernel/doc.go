// Package kernel holds small helpers over procfs, sysfs and capabilities,
// with configurable roots so unit tests read fixtures instead of the host.
package kernel

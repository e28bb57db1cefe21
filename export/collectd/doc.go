// Package collectd maps netsight's series to collectd identifiers
// (host/plugin-instance/type-instance, with types from collectd's types.db)
// and implements the collectd output: collectd's binary network protocol
// over UDP (module collectd.org), packets of at most 1452 bytes, optionally
// signed (SecurityLevel Sign) or encrypted, fed by the delivery core.
//
// UDP has no acknowledgement: a sample counts as delivered once its packet
// is written to the socket. A receiver that is down makes the kernel report
// "connection refused" on a later write, which the core retries.
package collectd

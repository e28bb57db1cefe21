// Package export builds netsight's push outputs (the top-level `outputs:`
// list) on the shared delivery core: New picks the encoder for the entry's
// type (export/remotewrite, export/influx, ...) and returns an Output the
// agent starts after the store and shuts down before it.
package export

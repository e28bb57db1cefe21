// Package dist builds the .deb and .rpm packages of netsight with nfpm from
// deploy/package/nfpm.yaml; cmd/nspkg is its command line (`make dist`).
// The tests build the .deb for the host and install, run and purge it.
package dist

// Package all links every collector into the binary. Each collector package
// adds one file here holding its blank import, e.g. conntrack.go:
//
//	import _ "github.com/netsight/netsight/collector/conntrack"
package all

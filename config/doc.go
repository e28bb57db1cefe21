// Package config holds netsight's root configuration: strict YAML decoding
// (an unknown key is an error naming its path), defaults filled in one place,
// and Validate methods whose errors name the field path, e.g.
// "collectors.probe.targets[2].interval: must be at least 100ms".
//
// Collector packages register their own configuration sections with
// RegisterCollector, so the root config decodes "collectors.<type>" into the
// collector's own typed struct without importing it.
package config

// Package container tests the FROM-scratch image (Dockerfile): podman builds
// it from the static binary and runs `netsight check` and `netsight run` in
// it with host networking and only the chart's capabilities.
package container

// Package helm holds the tests of the netsight Helm chart (deploy/helm/netsight):
// it renders the chart with the Helm v3 library for every ci/*-values.yaml,
// decodes every object strictly into its Kubernetes (or Prometheus Operator)
// type and checks the security properties (nothing privileged, the exact
// capability set, read-only host mounts, node RBAC that is read-only and
// present only for topology.kubernetes: api); invalid values must fail
// values.schema.json. The capability tests run the agent with exactly the
// chart's and the systemd unit's capability sets under setpriv; the config
// tests run it with the rendered configs, and against a loopback API server
// that allows only the chart's ClusterRole.
package helm

// Package helm holds the tests of the netsight Helm chart (deploy/helm/netsight):
// it renders the chart with the Helm v3 library for every ci/*-values.yaml,
// decodes every object strictly into its Kubernetes (or Prometheus Operator)
// type and checks the security properties; invalid values must fail
// values.schema.json. The capability tests run the agent with exactly the
// chart's and the systemd unit's capability sets under setpriv.
package helm

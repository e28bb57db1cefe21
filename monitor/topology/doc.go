// Package topology answers where an address sits: the network, zone, VPC and
// region that config (topology.networks), the EC2 instance metadata service
// (IMDSv2) or the Kubernetes node list name for it, or failing those this
// host, a private range or the internet. Every answer records its source.
// The monitors engine classifies each connection once (Category) into a
// fixed set of traffic categories.
package topology

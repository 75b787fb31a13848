// Package deploy holds what runs Databus in production but is no part of
// the gateway: the daemonless container image build and the checks of the
// Kubernetes manifests. It is a Go module of its own, so that the
// gateway's module does not carry go-containerregistry, the Kubernetes API
// types or kustomize.
package deploy

// Module crds pins the releases whose CustomResourceDefinitions the tests install on a
// local API server, to create the Argo CD and Prometheus Operator objects that deploy/
// ships (Application, ApplicationSet, ServiceMonitor, PrometheusRule) against the real
// schemas. Nothing imports them: `go mod download -json <module>` puts each release's
// files, its CRD YAML included, into the module cache, verified against go.sum, and the
// tests read them from there. So do not run `go mod tidy` here: it would drop both.
//
// Argo CD 3.5 is the newest line whose go.mod the Go installed here (1.26) accepts.
// Bump with: go get github.com/argoproj/argo-cd/v3@<version> (or the other module).
module sharedservices.io/tests/tools/crds

go 1.26.3

require (
	github.com/argoproj/argo-cd/v3 v3.5.7
	github.com/prometheus-operator/prometheus-operator v0.85.0
)

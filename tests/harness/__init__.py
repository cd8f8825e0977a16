"""Real Kubernetes control planes on loopback, for the tests, the demo and ``make up``.

Each cluster is an etcd, a kube-apiserver and a kube-controller-manager built from their Go
modules (see ``tests/controlplane``), started as child processes in a directory of its own.
Nothing here fakes the API: the operator and the tests talk to the same servers a real
cluster runs.
"""

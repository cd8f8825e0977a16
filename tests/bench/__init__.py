"""``make bench``: propagation latency, scale and burst, measured on the local clusters.

The operator runs as its own process, as in a pod. Figures come from an independent
observer in the benchmark's process that watches the workload cluster, so they include
everything between a change of the remote Service and a watcher of the local cluster
seeing its effect. The floor and the baseline are standalone scripts run the same way.
"""

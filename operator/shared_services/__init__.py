"""Keeps selectorless Services on a workload cluster pointed at shared services elsewhere.

The package is split by role: ``api`` holds the custom resources' models, ``builders``
turns an import and what its source resolved to into the desired local objects, ``writer``
is the one place that changes the local API, ``remote`` watches the central clusters, and
``handlers`` wires them to kopf.
"""

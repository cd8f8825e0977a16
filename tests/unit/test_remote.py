"""What a central cluster says about itself is bounded before any status holds it.

The version a server names goes into the RemoteCluster's status and its Connected message;
a server (or whatever answers in its place) may name any string, of any length, of any
characters. Pinned: the version shown is at most 64 printable characters, and a version
that is no string at all shows as nothing.
"""

from __future__ import annotations

import pytest

from shared_services import remote


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        ({"gitVersion": "v1.34.2+vmware.1"}, "v1.34.2+vmware.1"),
        ({"gitVersion": "v1.34.0-" + "x" * 300}, "v1.34.0-" + "x" * 55 + "…"),
        ({"gitVersion": "v1.34\n\x1b[31mred"}, "v1.34??[31mred"),
        ({"gitVersion": {"major": 1}}, ""),
        ({}, ""),
    ],
    ids=["plain", "long", "control", "object", "missing"],
)
def test_the_server_version_is_bounded(answer: dict[str, object], shown: str) -> None:
    assert remote.server_version(answer) == shown
    assert len(remote.server_version(answer)) <= 64

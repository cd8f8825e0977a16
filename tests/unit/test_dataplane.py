"""What the data plane needs from a machine, and the names it gives its namespaces.

A machine without root, a program or a package is told exactly what is missing, with the
Debian package that provides it and the command that installs it; namespaces left by a dead
owner are recognised as such, and those of a live owner (another test run on the same
machine) never are.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from harness import dataplane


def _which_all_but(*absent: str) -> Callable[[str], str | None]:
    return lambda program: None if program in absent else f"/usr/bin/{program}"


def test_a_complete_machine_lacks_nothing() -> None:
    problems = dataplane.missing_requirements(
        euid=0, which=_which_all_but(), postgres=Path("/usr/lib/postgresql/15/bin")
    )
    assert problems == []


def test_each_missing_part_is_named_with_its_package_and_the_fix() -> None:
    problems = dataplane.missing_requirements(
        euid=1000, which=_which_all_but("nft", "redis-cli", "redis-server"), postgres=None
    )
    assert problems[0].startswith("root:")
    assert "nft: Debian package nftables" in problems
    assert "redis-server: Debian package redis-server" in problems
    assert "redis-cli: Debian package redis-tools" in problems
    assert any(
        p.startswith("postgres ") and p.endswith("Debian package postgresql") for p in problems
    )
    assert problems[-1] == dataplane.INSTALL_HINT
    assert "make packages" in dataplane.INSTALL_HINT


def test_programs_of_one_package_share_a_line() -> None:
    problems = dataplane.missing_requirements(
        euid=0, which=_which_all_but("nsenter", "unshare"), postgres=Path("/x")
    )
    assert problems == ["nsenter, unshare: Debian package util-linux", dataplane.INSTALL_HINT]


def test_namespaces_of_a_dead_owner_are_orphans_and_others_are_not() -> None:
    plane_names = [f"sso-{os.getpid()}-abcd-node", "sso-1-abcd-pod"]  # pid 1 always lives
    assert all(dataplane.owner_alive(name) for name in plane_names)
    dead = 2**22 + 1  # above the kernel's largest pid
    assert not dataplane.owner_alive(f"sso-{dead}-abcd-lb")
    for foreign in ("sso-node", "cni-1234", f"other-{dead}-x-y", "sso-abc-12-node"):
        assert dataplane.owner_alive(foreign), foreign

"""``shared-services-operator`` / ``python -m shared_services``: run the operator.

Flags and environment variables are described by ``--help``. kopf watches the custom
resources; with namespaces listed it watches only those, which is also how a large
installation is split across several releases.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import kopf

from shared_services import handlers
from shared_services.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the settings and run kopf until it is stopped."""
    settings = Settings.parse(argv)
    handlers.SETTINGS = settings
    kopf.configure(
        verbose=settings.verbose,
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL,
    )
    if not settings.verbose:
        # A line per handled event and per health probe drowns what matters at scale.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # No liveness_endpoint: the operator serves /healthz and /readyz itself (handlers.py).
    kopf.run(clusterwide=not settings.namespaces, namespaces=settings.namespaces, standalone=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

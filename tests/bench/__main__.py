"""``python -m bench``: run the benchmark and write bench/REPORT.md."""

import sys

from bench.run import main

sys.exit(main())

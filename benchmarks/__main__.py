"""`python -m benchmarks` (from the repository's root): the standard scenarios, unattended."""

import sys

from benchmarks.harness.cli import main

sys.exit(main())

"""`python -m runservice` is the `runservice` command."""

import sys

from runservice.cli import main

sys.exit(main())

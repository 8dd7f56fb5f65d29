"""`python -m service` is the `runservice` command."""

import sys

from service.cli import main

sys.exit(main())

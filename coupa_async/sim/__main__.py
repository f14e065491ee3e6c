"""`python -m coupa_async.sim`: run the simulator until Ctrl+C."""

import sys

from .cli import main

sys.exit(main())

"""``python -m coupa_async``."""

import sys

from coupa_async.cli import main

sys.exit(main())

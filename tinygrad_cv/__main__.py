"""`python -m tinygrad_cv ...`: see tinygrad_cv/cli.py."""
import sys

from .cli import main

sys.exit(main())

"""``python -m jetdask.cli ARGS``: the same as ``jetdask ARGS``."""
import sys

from . import main

sys.exit(main())

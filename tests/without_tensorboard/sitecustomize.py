"""First on PYTHONPATH in every process the test suite starts (tests/conftest.py): the
process trains as if the tensorboard package were not installed (`output.tensorboard:
auto` writes no logs), the way the suite trains in its own processes."""

import sys

sys.modules.setdefault("tensorboard", None)

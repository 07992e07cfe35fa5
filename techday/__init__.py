"""Tech Day GPU Lab: the engine behind the course (tiers, build, headless runs, grading).

Labs import it in their first cell (``techday.setup``); instructors and CI use the ``techday`` command.
Keep this module light: importing it must not import Numba, CuPy or PyTorch.
"""

from .lab import Lab, setup
from .tier import TierError, TierInfo, detect

__version__ = "0.1.0"
__all__ = ["Lab", "TierError", "TierInfo", "detect", "setup", "__version__"]

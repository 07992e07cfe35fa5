"""What a lab's first code cell calls: choose the tier and the scale, print the banner.

```python
import techday
lab = techday.setup(tier=tier, scale=scale, title="00 GPU tour")
```

``tier`` and ``scale`` come from the lab's papermill parameters cell. ``None`` means "not given":
then ``$TECHDAY_TIER`` / ``$TECHDAY_SCALE`` decide (the runner and the grader set them), and
otherwise ``auto`` / ``full`` (what a trainee gets in JupyterLab).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .tier import TierError, TierInfo, banner, detect, enable_simulator

SCALES = ("full", "ci")
# Set by the grader (techday/grading/config.py): the folder, relative to the notebook's working folder, where a
# test leaves a file the grader takes out and scores itself after the notebook ran (techday/grading/outside.py).
GRADER_FILES = "TECHDAY_GRADER_FILES"


@dataclass
class Lab:
    """The context a lab works in. ``lab.tier`` is ``"gpu"`` or ``"cpu"``."""

    info: TierInfo
    scale: str
    title: str | None = None
    _scratch: list = field(default_factory=list, repr=False)

    @property
    def tier(self) -> str:
        return self.info.tier

    @property
    def on_gpu(self) -> bool:
        return self.info.tier == "gpu"

    @property
    def simulator(self) -> bool:
        return self.info.simulator

    @property
    def gpu(self):
        return self.info.gpu

    def size(self, full: int, ci: int, cpu: int | None = None) -> int:
        """Problem size for this run: ``full`` on a GPU workshop run, ``ci`` for quick validation,
        and ``cpu`` (default: ``ci``) whenever kernels run in the simulator, which is thousands of
        times slower than a GPU."""
        if self.scale == "ci":
            return ci
        if self.simulator:
            return ci if cpu is None else cpu
        return full

    def gpu_only(self, what: str) -> bool:
        """True on the GPU tier. Otherwise prints why ``what`` is skipped and returns False."""
        if self.on_gpu:
            return True
        from .i18n import msg

        print(msg("techday.gpu_only", "[GPU only] {what}: skipped on the CPU tier ({reason}).", what=what,
                  reason=self.info.reason))
        return False

    def per_tier(self, name: str, gpu, cpu):
        """A constant whose value depends on the tier, such as a tile size: ``gpu`` on the GPU tier,
        ``cpu`` in the simulator. ``name`` is the global the lab assigns it to; ``techday kernels``
        compiles the kernels that read it with both values (see :mod:`techday.kernelrec`)."""
        from .kernelrec import TIER_CONSTANTS

        TIER_CONSTANTS[name] = {"cpu": cpu, "gpu": gpu}
        return gpu if self.on_gpu else cpu

    def scratch(self, prefix: str) -> Path:
        """A new empty folder for files a lab writes and reads back (a script for torchrun, an exported
        model), in the system's temporary folder and removed when the kernel exits: on a shared
        server, 300 trainees running a lab several times leave nothing behind. Files a trainee should
        keep (a profiler trace to open elsewhere) belong in the notebook's own folder instead."""
        folder = tempfile.TemporaryDirectory(prefix=prefix)  # its finalizer removes it at exit
        self._scratch.append(folder)
        return Path(folder.name)

    def grader_files(self, prefix: str) -> Path:
        """The folder for a file a test hands to the grader (lab 17's exported model), which the grader serves
        itself after the notebook ran (techday/grading/outside.py): while graded, the same folder every time,
        ``$TECHDAY_GRADER_FILES`` under the working folder; elsewhere a scratch folder (:meth:`scratch`)."""
        where = os.environ.get(GRADER_FILES)
        if not where:
            return self.scratch(prefix)
        folder = Path(where).absolute()
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def timing_label(self) -> str:
        """How to label a timing taken in this lab."""
        from .tier import figure_label

        # Not translated: labs store this label in their timing records (labs 06, 07).
        return figure_label(self.gpu.name if self.on_gpu else None)


def resolve(tier: str | None, scale: str | None) -> tuple[str, str]:
    tier = tier or os.environ.get("TECHDAY_TIER") or "auto"
    scale = scale or os.environ.get("TECHDAY_SCALE") or "full"
    if scale not in SCALES:
        from .i18n import msg

        raise ValueError(msg("techday.unknown_scale", "unknown scale {scale!r}: choose one of {choices}",
                             scale=scale, choices=", ".join(SCALES)))
    return tier, scale


# matplotlib's warning for each character its font cannot draw ("Glyph 46020 (\N{HANGUL SYLLABLE DO})
# missing from font(s) DejaVu Sans."): one per syllable of a Korean title, on a machine without a Hangul font.
_MISSING_GLYPH = re.compile(r"Glyph \d+ .* missing from (current )?font")


def reword_missing_glyphs() -> None:
    """In a run that is not English: matplotlib's missing-glyph warnings become one line in the run's
    language that says what to install (the lab image has a Hangul font: docker/matplotlibrc; a trainee's
    own machine running ``techday lab`` may not). Other warnings are shown as before."""
    from .i18n import SOURCE_LANGUAGE, current_language

    if current_language() == SOURCE_LANGUAGE or getattr(warnings.showwarning, "_techday_glyphs", False):
        return
    previous, told = warnings.showwarning, []

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, UserWarning) and _MISSING_GLYPH.search(str(message)):
            if not told:
                from .i18n import msg

                told.append(True)
                print(msg("techday.no_hangul_font", "This machine has no font with Hangul: the plots' Korean text "
                          "shows as boxes. Install one (fonts-nanum or fonts-noto-cjk) and restart the kernel."),
                      file=file or sys.stderr)
            return
        previous(message, category, filename, lineno, file, line)

    show._techday_glyphs = True
    warnings.showwarning = show


def setup(tier: str | None = None, scale: str | None = None, title: str | None = None,
          quiet: bool = False) -> Lab:
    """Detect the tier (without importing Numba), switch the simulator on for the CPU tier,
    print the banner, and return the :class:`Lab` context."""
    tier, scale = resolve(tier, scale)
    reword_missing_glyphs()
    info = detect(tier)
    if info.tier == "cpu":
        enable_simulator()
        if os.environ.get("TECHDAY_KERNEL_LOG"):  # techday kernels: record every launch (and check it there)
            from .kernelrec import install

            install()
        else:  # when numba.cuda is imported: launches past a GPU's limits fail
            from .simlimits import install as refuse_what_a_gpu_refuses

            refuse_what_a_gpu_refuses()
    elif os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        from .i18n import msg

        raise TierError(msg("techday.simulator_on_gpu_tier",
                            "NUMBA_ENABLE_CUDASIM=1 is set but the GPU tier was chosen: unset it or ask for tier 'cpu'"))
    os.environ["TECHDAY_TIER_RESOLVED"] = info.tier
    lab = Lab(info=info, scale=scale, title=title)
    if not quiet:
        print(banner(info, scale=scale, title=title))
    return lab

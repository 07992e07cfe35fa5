"""Headless validation: running every lab with papermill (``runner``), the wrong solutions every test
must catch (``variants``), every kernel compiled for the GPU without one (``kernels``) and every CuPy
kernel source through NVRTC (``cupysources``). The grading contract lives in ``techday.grading``."""

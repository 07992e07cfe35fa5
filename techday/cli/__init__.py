"""The ``techday`` command: parsing and printing only (``main``); the grading and bench command groups
live beside their packages (``techday.grading.cli``, ``techday.bench.cli``)."""

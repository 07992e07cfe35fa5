"""Grading a room: ``techday grade check | autograde | results`` and the grading contract.

One module per job (the data path is in :mod:`techday.grading.run`):

- :mod:`.checks`        checks before any code runs: one status line per submitted file
- :mod:`.review`        the review policy: what a trainee's cells may do, decided without running them
- :mod:`.config`        nbgrader's grading settings: the course root's and each private root's, in one place
- :mod:`.executor`      nbgrader's side of the sandboxed executor (``SandboxExecute``)
- :mod:`.restore`       course cells a hand-in deleted put back, and their grading flags (``RestoreCourseCells``)
- :mod:`.sandbox`       the bubblewrap sandbox and its limits
- :mod:`.sandbox_exec`  inside the sandbox: runs the notebook, watches the kernel, returns outputs
- :mod:`.outside`       checks from outside the kernel: a file a test wrote, scored by the grader itself
- :mod:`.outside_kernels` lab 07's kernels run again by the grader, on cases it draws, and judged there
- :mod:`.worker`        a long-lived nbgrader process (trusted; no trainee code runs in it)
- :mod:`.pool`          N such workers for N grading threads
- :mod:`.gradebook`     snapshots of nbgrader's gradebook and the merge of one submission's scores
                        (manual grades kept, a locked gradebook waited for)
- :mod:`.state`         ``state.json``: resumable runs
- :mod:`.run`           orchestration: check, grade in parallel, merge, export
- :mod:`.results`       feedback without hidden tests, pass/fail per track, certificates
- :mod:`.contract`      ``techday grade selftest``: solution = full marks, release = zero
- :mod:`.cli`           the ``techday grade`` command group
"""

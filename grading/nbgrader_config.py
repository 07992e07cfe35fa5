# nbgrader settings shared by every course root that `techday build` makes.
# The generated <build>/course/nbgrader_config.py loads this file, then sets the root and course id.
c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads the file)

# What the trainee sees in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# GPU labs compile kernels on first call (JIT) and the simulator is slow: nbgrader's 30 s default per
# cell is too short. `techday build` raises this to the longest lab's limit from course/syllabus.toml.
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True

# Graded notebooks keep their order; feedback never shows hidden tests (nbgrader's default, stated).
c.ClearHiddenTests.enforce_metadata = True

# Trainees' answers and outputs are rendered as HTML in the instructor's browser (the formgrader, on
# the hub's origin) and in feedback: cleaned, never run (techday/grading/safehtml.py).
c.HTMLExporter.preprocessors = ["techday.grading.safehtml.SafeHTML"]

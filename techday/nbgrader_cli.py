"""``python -m techday.nbgrader_cli ARGS``: nbgrader's own command line, started faster.

The same ``nbgrader`` application and arguments; only jsonschema's IRI grammar, which no notebook
schema uses, is not built on the way in (see :func:`techday.fastimport.skip_iri_grammar`): about
1.3 s of CPU for each of the few hundred nbgrader runs that a build, a self-test and a grading day make;
and a new gradebook learns its schema revision in this process, not from the ``alembic`` program
(:func:`techday.fastimport.alembic_head_in_process`, about 2 s a build).
"""

from .fastimport import alembic_head_in_process, skip_iri_grammar

if __name__ == "__main__":
    skip_iri_grammar()
    alembic_head_in_process()  # a new gradebook's revision without starting the alembic program
    from nbgrader.apps.nbgraderapp import main

    main()

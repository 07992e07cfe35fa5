"""``python -m techday.nbgrader_cli ARGS``: nbgrader's own command line, started faster.

The same ``nbgrader`` application and arguments; only jsonschema's IRI grammar, which no notebook
schema uses, is not built on the way in (see :func:`techday.fastimport.skip_iri_grammar`): about
1.3 s of CPU for each of the few hundred nbgrader runs that a build, a self-test and a grading day make.
"""

from .fastimport import skip_iri_grammar

if __name__ == "__main__":
    skip_iri_grammar()
    from nbgrader.apps.nbgraderapp import main

    main()

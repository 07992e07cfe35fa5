"""Course and authoring: the syllabus (``syllabus``), the names of nbgrader's folders (``layout``), lab
sources and their notebooks (``labsrc``), the build (``build``) and the repository's hygiene rules
(``hygiene``). Nothing here is imported by a lab; see ARCHITECTURE.md for the layers."""

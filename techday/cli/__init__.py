"""The ``techday`` command: parsing and printing only. One module per command group (``course``,
``run``, ``grade``, ``i18n``, ``bench``, ``hub``), each with one ``register(sub)``; ``main`` puts
them together, ``common`` holds what they share."""

"""`/gpubook` and its subcommands: the grammar (``syntax``, ``words`` and the ``*_grammar``
modules, free of Slack), the handlers (``answers``, ``admin_answers``), the table joining them
(``registry``) and the slash command's listener (``listener``)."""

COMMAND = "/gpubook"

"""Helper programs the tests run as separate OS processes (``python -m tests.procs.NAME``)."""

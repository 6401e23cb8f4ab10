"""The `/gpubook` grammar as the rest of gpubook reads it: a text into a command, the help lines
and the subcommand words.

Each subcommand is declared once, in ``handlers.commands.registry``; this module is the stable
name the runtime (metric labels: ``VERBS``) and the docs check (``parse_command``) import.
"""

from handlers.commands.registry import EXAMPLES, VERBS, parse_command

__all__ = ["EXAMPLES", "VERBS", "parse_command"]

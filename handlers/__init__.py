"""Slack listeners. Each module registers its own with ``register(app, deps)``; ``register_all``
wires every one onto the single Bolt app that HTTP mode, Socket Mode and the console share."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from handlers.context import Deps


def register_all(app: AsyncApp, deps: Deps) -> None:
    # Imported here so `import handlers.ids` (used by the block builders) stays free of Bolt.
    from handlers import actions, home, modals
    from handlers.commands import listener

    for module in (listener, actions, modals, home):
        module.register(app, deps)

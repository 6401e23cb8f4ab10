"""``python -m bot`` runs the bot: the same as ``gpubook serve``."""

import sys

from bot.cli import main as cli

if __name__ == "__main__":
    raise SystemExit(cli.main(["serve", *sys.argv[1:]]))

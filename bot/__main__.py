"""``python -m bot`` runs the bot: the same as ``gpubook serve``."""

import sys

from bot.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main(["serve", *sys.argv[1:]]))

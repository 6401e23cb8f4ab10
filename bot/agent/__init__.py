"""``gpubook agent``: a small process on each GPU host that reports what runs on every card.

A probe reads the cards (:mod:`bot.agent.nvml` through NVML, or :mod:`bot.agent.standin` without
a GPU), :mod:`bot.agent.sender` posts each reading to the bot's ``POST /agent/report``, and
:mod:`bot.agent.run` is the command.
"""

"""Every Block Kit payload gpubook sends, built with ``slack_sdk.models`` so Slack's limits are
checked before anything leaves the process. Builders are pure functions of the service's
snapshots; listeners only choose which one to send.

So every builder is tested without Slack. User text (tasks, descriptions) always goes through
:func:`common.escape`; times that several people read are ``<!date^…>`` tokens so each reader
sees their own zone. Inputs of any size are summarised rather than overflowing Slack's limits
(50 blocks, 3000 characters per section, 75 per button text).

One module per job: :mod:`.common` (shared primitives), :mod:`.bookings`, :mod:`.refusals`,
:mod:`.reports`, :mod:`.calendar`, :mod:`.help`, :mod:`.admin`, :mod:`.home`, :mod:`.modals`,
:mod:`.notifications`.
"""

"""Every Block Kit payload gpubook sends, built with ``slack_sdk.models`` so Slack's limits are
checked before anything leaves the process. Builders are pure functions of the service's
snapshots; listeners only choose which one to send."""

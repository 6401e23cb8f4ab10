"""Test doubles for Slack: a fake Web API + Socket Mode server and signed request builders.

Nothing here talks to the internet; everything binds 127.0.0.1 on a random port.
"""

from tests.slackfake.blockkit import BlockKitError, validate_blocks, validate_view
from tests.slackfake.requests import SignedRequest, post
from tests.slackfake.socket_mode import FakeSocketMode
from tests.slackfake.webapi import Call, FakeSlackWebAPI, FakeUser

__all__ = [
    "BlockKitError",
    "Call",
    "FakeSlackWebAPI",
    "FakeSocketMode",
    "FakeUser",
    "SignedRequest",
    "post",
    "validate_blocks",
    "validate_view",
]

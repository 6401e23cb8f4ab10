"""The Slack Web API client gpubook uses everywhere: retries built in, base URL configurable.

slack-sdk's clients retry only connection errors by default; a 429 would fail the call. Every
client gpubook makes waits out ``Retry-After`` instead; the layers below the runtime (the
notifier) take the client as given, so they post through these retries without knowing of them.
"""

from __future__ import annotations

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

#: Retries of a 429 before the call fails (each waits Retry-After seconds).
RATE_LIMIT_RETRIES = 2


def build_client(token: str | None, api_url: str | None = None) -> AsyncWebClient:
    """A Web API client with retries; ``api_url`` must end in ``/`` (slack_sdk joins onto it)."""
    kwargs = {"base_url": api_url} if api_url else {}
    client = AsyncWebClient(token=token, **kwargs)
    _add_retries(client)
    return client


def _add_retries(client: AsyncWebClient) -> None:
    """Give ``client`` the connection-error and rate-limit retry handlers it lacks."""
    kinds = {type(handler) for handler in client.retry_handlers}
    if AsyncConnectionErrorRetryHandler not in kinds:
        client.retry_handlers.append(AsyncConnectionErrorRetryHandler())
    if AsyncRateLimitErrorRetryHandler not in kinds:
        client.retry_handlers.append(
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)
        )

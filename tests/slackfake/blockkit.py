"""Block Kit validation for payloads the bot sends to the fake Slack.

Real Slack rejects broken Block Kit with ``invalid_blocks`` / ``invalid_arguments``; the fake
accepts everything, so tests must validate explicitly. We parse with ``slack_sdk.models`` and call
``to_dict()`` (which runs the SDK's ``JsonValidator`` checks), then enforce the limits the SDK
does not check (found by experiment with slack-sdk 3.48):

* unknown block types (``Block.parse_all`` returns ``None``) and unknown element types
  (``BlockElement.parse`` returns ``None``; the SDK silently drops/keeps ``None``),
* more than 50 blocks in a message (list-level; the SDK only checks views: 1..100),
* section ``fields`` entries > 2000 chars, option text > 75 / value > 150 chars,
* ``header`` / button / option / modal title text that is not ``plain_text``,
* duplicate ``block_id`` values, modals without ``title``, modals with input blocks but no
  ``submit``, ``datetimepicker.initial_date_time`` that is not integer UNIX seconds,
* ``views.open`` payloads above 250 kB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block, BlockElement
from slack_sdk.models.views import View

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_VIEW_BYTES = 250_000
# Anything above this is milliseconds, not seconds (year 5138 in seconds).
_MAX_UNIX_SECONDS = 100_000_000_000

# Raw element keys whose dicts the SDK parses with BlockElement.parse.
_ELEMENT_KEYS = ("accessory", "element")
_TEXT_OBJECT_TYPES = {"plain_text", "mrkdwn", "image"}


class BlockKitError(AssertionError):
    """Raised when a payload would be rejected by Slack (an AssertionError for pytest output)."""


def validate_blocks(blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[Block]:
    """Validate a message's ``blocks`` list (default limit 50) and return the parsed blocks."""
    blocks = _maybe_json(blocks, "blocks")
    if not isinstance(blocks, list):
        raise BlockKitError(f"blocks must be a list, got {type(blocks).__name__}")
    if len(blocks) > max_blocks:
        raise BlockKitError(f"{len(blocks)} blocks exceed the limit of {max_blocks}")
    parsed = [_parse_one(index, raw) for index, raw in enumerate(blocks)]
    for index, (raw, block) in enumerate(zip(blocks, parsed, strict=True)):
        _validate_one_block(index, raw, block)
    _check_unique_block_ids(blocks)
    return [b for b in parsed if b is not None]


def _parse_one(index: int, raw: Any) -> Block | None:
    """``Block.parse_all`` one block at a time, so errors name the block.

    The SDK raises TypeError (not SlackObjectFormationError) when a required field is missing,
    e.g. an overflow menu without ``options``.
    """
    try:
        return Block.parse_all([raw])[0]
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise BlockKitError(f"block[{index}]: cannot parse: {exc}") from exc


def validate_view(view: Any) -> View:
    """Validate a modal/home ``view`` dict (100-block limit, title/submit rules) and return it."""
    view = _maybe_json(view, "view")
    if not isinstance(view, dict):
        raise BlockKitError(f"view must be a dict, got {type(view).__name__}")
    size = len(json.dumps(view).encode())
    if size > MAX_VIEW_BYTES:
        raise BlockKitError(f"view is {size} bytes, over the {MAX_VIEW_BYTES} byte limit")
    _check_view_shape(view)
    blocks = view.get("blocks", [])
    validate_blocks(blocks, max_blocks=MAX_VIEW_BLOCKS)
    try:
        parsed = View(**view)
        parsed.to_dict()
    except (SlackObjectFormationError, TypeError, ValueError) as exc:
        raise BlockKitError(f"invalid view: {exc}") from exc
    return parsed


def _maybe_json(value: Any, what: str) -> Any:
    """slack_sdk may send ``blocks``/``view`` as JSON strings in form bodies."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise BlockKitError(f"{what} is a string but not JSON: {value[:80]!r}") from exc


def _check_view_shape(view: dict[str, Any]) -> None:
    """Rules Slack enforces on modals that View.to_dict() lets through."""
    if view.get("type") != "modal":
        return
    title = view.get("title")
    if not title:
        raise BlockKitError("modal views need a title")
    _require_plain_text(title, "modal title")
    has_input = any(b.get("type") == "input" for b in view.get("blocks", []) if isinstance(b, dict))
    if has_input and not view.get("submit"):
        raise BlockKitError("modal with input blocks needs a submit button")


def _validate_one_block(index: int, raw: Any, block: Block | None) -> None:
    """Run the SDK validators plus our explicit checks on one block."""
    where = f"block[{index}] (type={raw.get('type') if isinstance(raw, dict) else raw!r})"
    if block is None or not isinstance(raw, dict):
        raise BlockKitError(f"{where}: unknown block type")
    try:
        block.to_dict()
    except SlackObjectFormationError as exc:
        raise BlockKitError(f"{where}: {exc}") from exc
    try:
        _check_block_limits(raw)
        _check_elements_known(raw)
    except BlockKitError as exc:
        raise BlockKitError(f"{where}: {exc}") from exc


def _check_block_limits(raw: dict[str, Any]) -> None:
    """Text limits per block type (section/header), re-checked so we never depend on the SDK."""
    kind = raw.get("type")
    if kind == "section":
        text = raw.get("text")
        if text is not None:
            _check_len(text, MAX_SECTION_TEXT, "section text")
        for field in raw.get("fields") or []:
            _check_len(field, MAX_SECTION_FIELD_TEXT, "section field")
    elif kind == "header":
        text = raw.get("text") or {}
        _require_plain_text(text, "header text")
        _check_len(text, MAX_HEADER_TEXT, "header text")
    for element in _iter_elements(raw):
        _check_element(element)


def _check_elements_known(raw: dict[str, Any]) -> None:
    """BlockElement.parse returns None for unknown element types; the SDK then hides it."""
    for element in _iter_elements(raw):
        kind = element.get("type")
        if raw.get("type") == "context" and kind in _TEXT_OBJECT_TYPES:
            continue
        if kind in ("plain_text", "mrkdwn") or _parse_element(element) is None:
            raise BlockKitError(f"unknown element type {kind!r}")


def _parse_element(element: dict[str, Any]) -> BlockElement | None:
    try:
        return BlockElement.parse(element)  # type: ignore[return-value]
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise BlockKitError(f"cannot parse element {element.get('type')!r}: {exc}") from exc


def _iter_elements(raw: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield the interactive/context element dicts of a raw block."""
    for key in _ELEMENT_KEYS:
        if isinstance(raw.get(key), dict):
            yield raw[key]
    if raw.get("type") in ("actions", "context"):
        for element in raw.get("elements") or []:
            if isinstance(element, dict):
                yield element
            else:
                raise BlockKitError(f"element {element!r} is not an object")


def _check_element(element: dict[str, Any]) -> None:
    """Limits on select options, button text and datetimepicker values."""
    kind = element.get("type")
    if kind == "button":
        _require_plain_text(element.get("text") or {}, "button text")
    for option in _iter_options(element):
        _require_plain_text(option.get("text") or {}, "option text")
        _check_len(option.get("text") or {}, MAX_OPTION_TEXT, "option text")
        value = option.get("value") or ""
        if len(value) > MAX_OPTION_VALUE:
            raise BlockKitError(f"option value is {len(value)} chars, limit {MAX_OPTION_VALUE}")
    if kind == "datetimepicker" and "initial_date_time" in element:
        _check_unix_seconds(element["initial_date_time"])


def _iter_options(element: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Options of a select/checkbox/radio element, including option groups and initial ones."""
    options: list[Any] = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    if isinstance(element.get("initial_option"), dict):
        options.append(element["initial_option"])
    options.extend(element.get("initial_options") or [])
    yield from (o for o in options if isinstance(o, dict))


def _check_unix_seconds(value: Any) -> None:
    """Slack wants integer UNIX seconds; a float or milliseconds breaks the picker."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BlockKitError(f"initial_date_time must be int UNIX seconds, got {value!r}")
    if value > _MAX_UNIX_SECONDS:
        raise BlockKitError(f"initial_date_time {value} looks like milliseconds")


def _check_len(text_object: Any, limit: int, what: str) -> None:
    text = text_object.get("text", "") if isinstance(text_object, dict) else str(text_object)
    if len(text) > limit:
        raise BlockKitError(f"{what} is {len(text)} chars, limit {limit}")


def _require_plain_text(text_object: Any, what: str) -> None:
    if isinstance(text_object, dict) and text_object.get("type") not in (None, "plain_text"):
        raise BlockKitError(f"{what} must be plain_text, got {text_object.get('type')!r}")


def _check_unique_block_ids(blocks: Sequence[Any]) -> None:
    """Slack rejects a message/view whose blocks repeat a block_id."""
    seen: set[str] = set()
    for block in blocks:
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if block_id is None:
            continue
        if block_id in seen:
            raise BlockKitError(f"duplicate block_id {block_id!r}")
        seen.add(block_id)


def validate_message_payload(payload: dict[str, Any]) -> None:
    """Validate the ``blocks`` of a chat.* call or response_url body, if it has any."""
    if payload.get("blocks") is not None:
        validate_blocks(payload["blocks"])

"""Slack's Web API methods as the double answers them: Slack's reply shapes, read from and
written into the double's state (:class:`~bot.console.slackapi.SlackWebAPI`).

Each method is a function of the double and the call's arguments, kept out of the server class:
the server is about serving and keeping state, this table about what Slack would answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.console.slack_model import FileShared, SlackFile, ViewShown
from bot.console.slack_requests import message_payload

if TYPE_CHECKING:  # the server imports this table
    from bot.console.slackapi import SlackWebAPI

#: One Web API method: the double and the call's arguments in, the reply's fields out.
Method = Callable[["SlackWebAPI", dict[str, Any]], dict[str, Any]]


def _auth_test(api: SlackWebAPI, _: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": api.identity.url,
        "team": api.identity.team_name,
        "user": "gpubook",
        "team_id": api.identity.team_id,
        "user_id": api.identity.bot_user_id,
        "bot_id": api.identity.bot_id,
        "is_enterprise_install": False,
    }


def _users_info(api: SlackWebAPI, args: dict[str, Any]) -> dict[str, Any]:
    return {"user": api.user(str(args.get("user", ""))).to_slack(api.identity.team_id)}


def _users_lookup_by_email(api: SlackWebAPI, args: dict[str, Any]) -> dict[str, Any]:
    """The member whose profile has this address (Slack compares it case-insensitively)."""
    email = str(args.get("email", "")).lower()
    for user in api.users.values():
        if user.email is not None and user.email.lower() == email:
            return {"user": user.to_slack(api.identity.team_id)}
    return {"error": "users_not_found"}


def _conversations_open(api: SlackWebAPI, args: dict[str, Any]) -> dict[str, Any]:
    users = str(args.get("users") or args.get("channel") or "")
    return {"no_op": False, "channel": {"id": dm_channel(users.split(",")[0])}}


def _conversations_info(api: SlackWebAPI, args: dict[str, Any]) -> dict[str, Any]:
    channel = str(args.get("channel", ""))
    is_im = channel.startswith("D")
    return {
        "channel": {
            "id": channel,
            "name": "" if is_im else "general",
            "is_channel": channel.startswith("C"),
            "is_im": is_im,
            "is_private": channel.startswith("G"),
            "is_member": True,
        },
    }


def _channel(args: dict[str, Any]) -> str:
    return dm_channel(str(args.get("channel", "")))


def _message_reply(api: SlackWebAPI, args: dict[str, Any], ts: str) -> dict[str, Any]:
    return message_payload(
        api.identity, ts, args.get("text", ""), args.get("blocks"), args.get("thread_ts")
    )


def _chat_post_message(api: SlackWebAPI, args: dict[str, Any]) -> dict[str, Any]:
    message = api.post(_channel(args), args.get("text", ""), args.get("blocks"))
    reply = _message_reply(api, args, message.ts)
    return {"channel": message.channel, "ts": message.ts, "message": reply}


def _chat_post_ephemeral(api: SlackWebAPI, args: dict[str, Any]) -> dict[str, Any]:
    message = api.post(_channel(args), args.get("text", ""), args.get("blocks"), args.get("user"))
    return {"message_ts": message.ts}


def _chat_update(api: SlackWebAPI, args: dict[str, Any]) -> dict[str, Any]:
    key = (_channel(args), str(args.get("ts", "")))
    changes: dict[str, Any] = {"text": args.get("text", "")}
    if "blocks" in args:
        changes["blocks"] = args.get("blocks") or []
    if api.change(key, **changes) is None and api.strict:
        return {"error": "message_not_found"}
    channel, ts = key
    text = args.get("text", "")
    return {
        "channel": channel,
        "ts": ts,
        "text": text,
        "message": _message_reply(api, args, ts),
    }


def _chat_delete(api: SlackWebAPI, args: dict[str, Any]) -> dict[str, Any]:
    key = (_channel(args), str(args.get("ts", "")))
    if api.change(key, deleted=True) is None and api.strict:
        return {"error": "message_not_found"}
    return {"channel": key[0], "ts": key[1]}


def _views_open(api: SlackWebAPI, args: dict[str, Any]) -> dict[str, Any]:
    return _show_view(api, "open", api.store_view(args.get("view") or {}))


def _views_push(api: SlackWebAPI, args: dict[str, Any]) -> dict[str, Any]:
    return _show_view(api, "push", api.store_view(args.get("view") or {}))


def _views_update(api: SlackWebAPI, args: dict[str, Any]) -> dict[str, Any]:
    """Replace a view by id or ``external_id``; a stale ``hash`` conflicts, like Slack."""
    external_id = str(args.get("external_id") or "")
    view_id = args.get("view_id") or _view_with_external_id(api, external_id)
    current = api.views.get(view_id or "")
    if current is None and api.strict:
        return {"error": "not_found"}
    if current is not None and args.get("hash") and args["hash"] != current["hash"]:
        return {"error": "hash_conflict"}
    return _show_view(api, "update", api.store_view(args.get("view") or {}, view_id))


def _views_publish(api: SlackWebAPI, args: dict[str, Any]) -> dict[str, Any]:
    """Each user's App Home keeps one id, so a click on an old one can be told stale."""
    user_id = str(args.get("user_id", ""))
    view = api.store_view(args.get("view") or {}, f"VHOME{user_id}")
    return _show_view(api, "publish", view, user_id)


def _view_with_external_id(api: SlackWebAPI, external_id: str) -> str | None:
    if not external_id:
        return None
    return next((v["id"] for v in api.views.values() if v["external_id"] == external_id), None)


def _show_view(
    api: SlackWebAPI, how: str, view: dict[str, Any], user_id: str | None = None
) -> dict[str, Any]:
    api.shown(ViewShown(how, view, user_id))
    return {"view": view}


def _files_get_upload_url_external(api: SlackWebAPI, args: dict[str, Any]) -> dict[str, Any]:
    """Announce an upload: Slack wants its name and byte length, and answers where to POST it."""
    name, length = str(args.get("filename") or ""), str(args.get("length") or "")
    if not name or not length.isdigit():
        return {"error": "invalid_arguments"}
    file = SlackFile(api.new_id("F"), name, int(length), alt_txt=str(args.get("alt_txt") or ""))
    api.files[file.id] = file
    return {"upload_url": f"{api.url}/upload/{file.id}", "file_id": file.id}


#: A conversation id (``channel_id`` must be one: a user id is refused as invalid_arguments).
_CONVERSATION = re.compile(r"^[CGDZ][A-Z0-9]+$")


def _files_complete_upload_external(api: SlackWebAPI, args: dict[str, Any]) -> dict[str, Any]:
    """Finish uploads whose bytes arrived, sharing them into ``channel_id`` when given."""
    try:
        wanted = json.loads(str(args.get("files") or "[]"))
    except json.JSONDecodeError:
        return {"error": "invalid_arguments"}
    channel = str(args.get("channel_id") or "")
    if channel and not _CONVERSATION.match(channel):
        return {"error": "invalid_arguments"}
    found = [api.files.get(str(item.get("id"))) for item in wanted if isinstance(item, dict)]
    if not wanted or None in found or any(f.content is None for f in found if f):
        return {"error": "file_not_found"}
    done = []
    for file, item in zip(found, wanted, strict=True):
        assert file is not None
        file.title = str(item.get("title") or file.name)
        if channel:
            file.channel = channel
            api.shown(FileShared(channel, file))
        done.append({"id": file.id, "name": file.name, "title": file.title, "size": file.length})
    return {"files": done}


METHODS: dict[str, Method] = {
    "auth.test": _auth_test,
    "users.info": _users_info,
    "users.lookupByEmail": _users_lookup_by_email,
    "conversations.open": _conversations_open,
    "conversations.info": _conversations_info,
    "chat.postMessage": _chat_post_message,
    "chat.postEphemeral": _chat_post_ephemeral,
    "chat.update": _chat_update,
    "chat.delete": _chat_delete,
    "views.open": _views_open,
    "views.push": _views_push,
    "views.update": _views_update,
    "views.publish": _views_publish,
    "files.getUploadURLExternal": _files_get_upload_url_external,
    "files.completeUploadExternal": _files_complete_upload_external,
}


def dm_channel(channel: str) -> str:
    """Posting to a user id lands in the app's DM with them, which Slack reports as ``D<user>``."""
    return f"D{channel}" if channel[:1] in ("U", "W") else channel

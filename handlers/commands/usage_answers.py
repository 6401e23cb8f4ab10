"""How `link`, `unlink` and `admin link` are answered (the service checks who may)."""

from __future__ import annotations

from handlers.blocks.common import Message, escape, notice
from handlers.commands.syntax import AdminLink, Link, Unlink
from handlers.pipeline import Request


async def link(request: Request, cmd: Link) -> Message:
    service = request.deps.service
    if cmd.login is None:
        logins = await service.logins_of(request.actor)
        text = (
            "Your Unix logins: " + ", ".join(f"`{escape(login)}`" for login in logins) + "."
            if logins
            else "You have linked no Unix login yet; link yours with `/gpubook link <login>`."
        )
        return Message(text, notice(text))
    done = await service.link_login(request.actor, cmd.login)
    text = f"Linked the Unix login `{escape(done.login)}` to you: gpubook now sees its GPU use as yours."
    return Message(text, notice(text, emoji=":white_check_mark:"))


async def unlink(request: Request, cmd: Unlink) -> Message:
    done = await request.deps.service.unlink_login(request.actor, cmd.login)
    text = f"Unlinked the Unix login `{escape(done.login)}` from <@{done.user_id}>."
    return Message(text, notice(text, emoji=":white_check_mark:"))


async def admin_link(request: Request, cmd: AdminLink) -> Message:
    done = await request.deps.service.link_login(request.actor, cmd.login, cmd.user_id)
    text = f"Linked the Unix login `{escape(done.login)}` to <@{done.user_id}>."
    return Message(text, notice(text, emoji=":white_check_mark:"))

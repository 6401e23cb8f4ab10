"""`gpubook serve` settings checks and the Slack app manifest."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.cli.main import main
from bot.core.errors import InputError
from bot.runtime.config import Settings
from bot.runtime.runner import EXIT_CONFIG, ConfigError, check_settings, run
from bot.runtime.settings_doc import BOT_SCOPES
from handlers.commands import COMMAND

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"


def settings(**env: str) -> Settings:
    return Settings.from_env(env)


def test_http_mode_needs_bot_token_and_signing_secret() -> None:
    assert check_settings(settings(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s")) == "http"
    with pytest.raises(ConfigError) as error:
        check_settings(settings())
    lines = str(error.value).splitlines()
    assert [line.split(" ")[0] for line in lines[:2]] == ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"]
    assert "gpubook console" in lines[-1]


def test_socket_mode_needs_app_and_bot_tokens() -> None:
    assert check_settings(settings(SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1")) == "socket"
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN is not set"):
        check_settings(settings(SLACK_APP_TOKEN="xapp-1"))


def test_malformed_tokens_are_named() -> None:
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN should start with `xapp-`"):
        check_settings(settings(SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xoxb-2"))
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN should start with `xoxb-`"):
        check_settings(settings(SLACK_BOT_TOKEN="xapp-1", SLACK_SIGNING_SECRET="s"))


def test_many_workspace_mode_needs_both_oauth_credentials_over_http() -> None:
    oauth = {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "c", "SLACK_SIGNING_SECRET": "s"}
    assert check_settings(settings(**oauth)) == "http"  # no SLACK_BOT_TOKEN needed
    assert settings(**oauth).slack_scopes == BOT_SCOPES
    assert settings(**oauth, SLACK_SCOPES="commands, chat:write").slack_scopes == (
        "commands",
        "chat:write",
    )
    cases = [
        ({"SLACK_CLIENT_ID": "1.2", "SLACK_SIGNING_SECRET": "s"}, "SLACK_CLIENT_SECRET is not set"),
        ({**oauth, "SLACK_BOT_TOKEN": "xoxb-1"}, "unset SLACK_BOT_TOKEN"),
        ({**oauth, "SLACK_APP_TOKEN": "xapp-1"}, "unset SLACK_APP_TOKEN"),
        ({**oauth, "SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET is not set"),
    ]
    for env, problem in cases:
        with pytest.raises(ConfigError, match=problem):
            check_settings(settings(**env))


def test_run_exits_2_with_one_sentence_per_problem(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(settings()) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "SLACK_BOT_TOKEN is not set" in err and "SLACK_SIGNING_SECRET is not set" in err


def test_serve_is_a_cli_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.setenv(name, "")
    monkeypatch.chdir(Path(__file__).parent)  # no developer .env here
    assert main(["serve"]) == EXIT_CONFIG
    assert "gpubook console" in capsys.readouterr().err


def test_host_is_every_interface_unless_an_address_or_a_name_is_given() -> None:
    assert settings().host is None
    assert settings(HOST="127.0.0.1").host == "127.0.0.1"
    assert settings(HOST="[::1]").host == "::1"
    assert settings(HOST="gpubook.internal").host == "gpubook.internal"
    with pytest.raises(InputError) as error:
        settings(HOST="http://gpubook:80")
    assert str(error.value).startswith("HOST='http://gpubook:80' is not an address to listen on")


def test_manifest_declares_what_the_bot_uses() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    features, settings_ = manifest["features"], manifest["settings"]
    assert manifest["display_information"]["name"] == "gpubook"
    assert features["bot_user"]["display_name"]
    assert features["app_home"]["home_tab_enabled"] and features["app_home"]["messages_tab_enabled"]
    [command] = features["slash_commands"]
    assert command["command"] == COMMAND and command["should_escape"] is True
    assert command["description"] and command["usage_hint"]
    assert command["url"].endswith("/slack/events")
    assert manifest["oauth_config"]["scopes"]["bot"] == list(BOT_SCOPES)  # SLACK_SCOPES' default
    assert manifest["oauth_config"]["redirect_urls"] == ["https://example.com/slack/oauth_redirect"]
    assert settings_["event_subscriptions"]["bot_events"] == [
        "app_home_opened",
        "app_uninstalled",
        "tokens_revoked",
    ]
    assert settings_["event_subscriptions"]["request_url"].endswith("/slack/events")
    assert settings_["interactivity"] == {
        "is_enabled": True,
        "request_url": "https://example.com/slack/events",
    }
    assert settings_["socket_mode_enabled"] is True
    assert settings_["org_deploy_enabled"] is False and settings_["token_rotation_enabled"] is False

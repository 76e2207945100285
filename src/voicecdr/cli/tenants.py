"""``apps``: customer apps (tenants), their settings and their credentials.

Each command imports ``voicecdr.apps`` (and with it storage) itself, so that starting any
other command does not load them."""

from __future__ import annotations

from typing import Any

import click

from ..cli_numbers import real
from ._base import Context, json_flag, main, pass_ctx, table


@main.group("apps")
def apps_group() -> None:
    """Customer apps (tenants) and their credentials."""


def _human_credentials(d: dict[str, Any]) -> str:
    shown = "\n".join(f"{k:15} {v}" for k, v in d.items() if v is not None)
    if d.get("secretkey"):
        shown += "\nKeep the secretkey now: only its hash is stored."
    return shown


@apps_group.command("create")
@click.option("--name", required=True)
@click.option("--appkey", help="Default: 32 random hex characters.")
@click.option("--secretkey", help="Default: 43 random URL-safe characters.")
@click.option("--timezone", help="IANA name [default: VOICECDR_TIMEZONE or Asia/Shanghai].")
@click.option("--language", type=click.Choice(["en", "zh"]), help="[default: en]")
@click.option("--callback-url", help="Where receipts are pushed.")
@click.option("--rate-limit", type=real(), help="Query requests per second [default: 1].")
@json_flag
@pass_ctx
def apps_create(obj: Context, /, **options: Any) -> None:
    """Create an app and print its appkey, secretkey and signing_secret."""
    from .. import apps
    from ..storage import AppStore

    with obj.database() as db:
        settings = obj.settings()
        issued = apps.create_app(
            AppStore(db),
            default_timezone=settings.timezone,
            check_callback=apps.CallbackCheck(settings.allow_private_callbacks),
            **options,
        )
    obj.emit(issued.to_dict(), _human_credentials)


@apps_group.command("list")
@json_flag
@pass_ctx
def apps_list(obj: Context) -> None:
    """List apps (never their secrets)."""
    from .. import apps
    from ..storage import AppStore

    with obj.database() as db:
        rows = [apps.public_view(a) for a in AppStore(db).list()]
    obj.emit(
        rows,
        lambda rs: table(
            [{**r, "state": "enabled" if r["enabled"] else "disabled"} for r in rs],
            _APP_COLUMNS,
            "no apps",
        ),
    )


_APP_COLUMNS = {
    "appkey": "APPKEY",
    "name": "NAME",
    "timezone": "TIMEZONE",
    "language": "LANGUAGE",
    "rate_limit": "RATE/S",
    "state": "STATE",
    "callback_url": "CALLBACK URL",
}


@apps_group.command("update")
@click.argument("appkey")
@click.option("--name")
@click.option("--timezone")
@click.option("--language", type=click.Choice(["en", "zh"]))
@click.option("--callback-url", help="An empty string removes the callback.")
@click.option("--rate-limit", type=real())
@json_flag
@pass_ctx
def apps_update(obj: Context, /, appkey: str, **changes: Any) -> None:
    """Change an app's settings."""
    from .. import apps
    from ..storage import AppStore

    with obj.database() as db:
        check = apps.CallbackCheck(obj.settings().allow_private_callbacks)
        app = apps.update_app(AppStore(db), appkey, check_callback=check, **changes)
    obj.emit(apps.public_view(app), lambda d: "\n".join(f"{k:13} {v}" for k, v in d.items()))


@apps_group.command("rotate-secret")
@click.argument("appkey")
@click.option("--secretkey", help="Use this secretkey instead of a random one.")
@click.option(
    "--signing-secret",
    "signing",
    is_flag=True,
    help="Issue a new receipt signing secret instead (with --secretkey: both).",
)
@json_flag
@pass_ctx
def apps_rotate_secret(obj: Context, appkey: str, secretkey: str | None, signing: bool) -> None:
    """Issue a new secretkey (the old one stops working at once) or signing secret."""
    from .. import apps
    from ..storage import AppStore

    with obj.database() as db:
        issued = apps.rotate_secret(AppStore(db), appkey, secretkey=secretkey, signing=signing)
    obj.emit(issued.to_dict(), _human_credentials)


def _human_state(d: dict[str, Any], cache_seconds: float) -> str:
    state = "enabled" if d["enabled"] else "disabled"
    if not d["changed"]:
        return f"app {d['appkey']} was already {state}: nothing changed"
    if d["enabled"]:
        return (
            f"app {d['appkey']} enabled: its queries and ingest are accepted again "
            f"(running servers within {cache_seconds:g} s)"
        )
    return (
        f"app {d['appkey']} disabled: its queries get auth_failed (running servers within "
        f"{cache_seconds:g} s) and its new CDRs are refused; its data stays"
    )


def _set_enabled(obj: Context, appkey: str, *, enabled: bool) -> None:
    from .. import apps
    from ..storage import AppStore

    with obj.database() as db:
        change = apps.set_enabled(AppStore(db), appkey, enabled=enabled)
    cache = obj.settings().app_cache_seconds
    obj.emit(
        {**apps.public_view(change.app), "changed": change.changed},
        lambda d: _human_state(d, cache),
    )


@apps_group.command("disable")
@click.argument("appkey")
@json_flag
@pass_ctx
def apps_disable(obj: Context, appkey: str) -> None:
    """Suspend an app: its queries get auth_failed and its new CDRs are refused.

    Its data stays; CDRs already stored are still rated and their receipts still sent
    (clear the callback with `apps update APPKEY --callback-url ''` to stop those).
    Running servers notice within VOICECDR_APP_CACHE_SECONDS. Disabling a disabled app
    changes nothing.
    """
    _set_enabled(obj, appkey, enabled=False)


@apps_group.command("enable")
@click.argument("appkey")
@json_flag
@pass_ctx
def apps_enable(obj: Context, appkey: str) -> None:
    """Put a disabled app back in service, with all its data and settings."""
    _set_enabled(obj, appkey, enabled=True)

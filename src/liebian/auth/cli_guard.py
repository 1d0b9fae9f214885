"""Authorisation of CLI commands: every command's callback is wrapped, once, by `install(app, prefix)`
when liebian/cli.py loads its module; the wrapper finds who is acting and checks auth.policy.COMMANDS
before it runs.

Who is acting:
- `LIEBIAN_API_KEY` — an API key, verified like the HTTP API's (for cron and remote automation);
- `--user NAME` / `LIEBIAN_USER` — a console user, acting with its role. This is attribution and
  least privilege for people who already hold a shell on the server (they can read the key file and
  the store anyway), not a barrier against them; the audit log names them;
- neither, on a store without users — the local bootstrap admin of a fresh install, so that
  `liebian auth create-user NAME --role admin` can create the first admin. Once a user exists, a
  command without an identity is refused.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import typer
from sqlalchemy.exc import OperationalError, ProgrammingError
from typer.core import TyperGroup
from typer.models import CommandInfo

from liebian.auth import policy
from liebian.click_compat import click
from liebian.lazy import collector_paused
from liebian.output import err_console

if TYPE_CHECKING:  # imported with the command, not for --help
    from liebian.auth.service import Principal

EXIT_DENIED = 3
CLI_USER: str | None = None  # set by the root callback from --user / LIEBIAN_USER


def _name_of(info: CommandInfo) -> str:
    if info.name:
        return info.name
    assert info.callback is not None, "a registered command has a callback"
    return info.callback.__name__.lower().replace("_", "-")


def _iter_infos(app: typer.Typer, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, CommandInfo]]:
    """(command path, CommandInfo) for every command of a Typer app, sub-apps included."""
    for info in app.registered_commands:
        yield " ".join((*prefix, _name_of(info))), info
    for group in app.registered_groups:
        sub = group.typer_instance
        assert sub is not None, "add_typer always gives the sub-app"
        name = group.name or sub.info.name
        assert isinstance(name, str), "liebian names every sub-app it adds"
        yield from _iter_infos(sub, (*prefix, name))


def iter_commands(app: typer.Typer) -> Iterator[tuple[str, click.Command]]:
    """(command path, click command) for every command the CLI offers, the groups liebian/cli.py
    imports only when they are invoked included (this imports them)."""

    def walk(
        group: TyperGroup, ctx: click.Context, prefix: tuple[str, ...]
    ) -> Iterator[tuple[str, click.Command]]:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if isinstance(command, TyperGroup):  # every group of typer's building
                yield from walk(command, click.Context(command, parent=ctx, info_name=name), (*prefix, name))
            elif command is not None:
                yield " ".join((*prefix, name)), command

    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup), "the liebian CLI is a group of commands"
    yield from walk(root, click.Context(root, info_name="liebian"), ())


def current_principal():
    """The CLI's principal (see the module docstring); raises AuthError when it cannot be established."""
    # deferred: the guard loads auth only when a guarded command runs, not for --help
    from liebian.auth import service
    from liebian.db.session import session_scope

    api_key = os.environ.get("LIEBIAN_API_KEY")
    username = CLI_USER or os.environ.get("LIEBIAN_USER")
    try:
        with session_scope() as s:
            if api_key:
                found = service.key_principal(s, api_key)
                if found is None:
                    raise service.AuthError(
                        "unauthorized", "LIEBIAN_API_KEY: invalid, revoked or expired key", 401
                    )
                return found
            if username:
                return service.user_principal(s, username)
            if not service.has_users(s):
                return service.LOCAL_BOOTSTRAP
    except (OperationalError, ProgrammingError):
        return service.LOCAL_BOOTSTRAP  # no auth tables yet: a store that is not migrated has no users
    raise service.AuthError(
        "unauthorized",
        "this store has users: say who you are with --user NAME (or LIEBIAN_USER), or set LIEBIAN_API_KEY",
        401,
    )


def check(path: str) -> Principal:
    """Authorise one command path; exits with code 3 and a message when refused."""
    # deferred: the guard loads auth only when a guarded command runs, not for --help
    from liebian.auth import service

    permission = policy.command_permission(path)
    if permission == policy.ANONYMOUS:
        return service.ANONYMOUS_PRINCIPAL
    try:
        principal = current_principal()
    except service.AuthError as exc:
        err_console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(EXIT_DENIED) from exc
    if not principal.can(permission):
        _audit(principal.name, "access.denied", f"cli:{path}", {"needs": permission})
        err_console.print(
            f"[red]forbidden: `liebian {path}` needs the permission {permission or 'admin'}; "
            f"{principal.name} ({principal.role or principal.kind}) does not hold it[/red]"
        )
        raise typer.Exit(EXIT_DENIED)
    return principal


def _audit(actor: str, action: str, target: str, detail: dict) -> None:
    # deferred: the guard loads auth only when a guarded command runs, not for --help
    from liebian.auth import service
    from liebian.db.session import session_scope

    try:
        with session_scope() as s:
            service.audit(s, actor, action, target, detail, "cli")
    except (OperationalError, ProgrammingError):
        pass  # store not migrated yet (db upgrade): nothing to write to


_ACTING: list = []


def acting():
    """The principal of the command being run (for commands that audit their own actions)."""
    # deferred: the guard loads auth only when a guarded command runs, not for --help
    from liebian.auth import service

    return _ACTING[-1] if _ACTING else service.LOCAL_BOOTSTRAP


def guarded(path: str, callback: Callable) -> Callable:
    if getattr(callback, "__liebian_guarded__", False):
        return callback

    @functools.wraps(callback)
    def wrapper(*args, **kwargs):
        with collector_paused():  # the first use of auth and the store imports them (start-up time)
            principal = check(path)
            permission = policy.command_permission(path)
            if permission not in policy.PUBLIC_SCOPES and permission != policy.ANONYMOUS:
                # parameter names only: values can be identifiers (a phone to look up)
                _audit(principal.name, "cli.run", f"cli:{path}", {"params": sorted(kwargs)})
        _ACTING.append(principal)
        try:
            return callback(*args, **kwargs)
        finally:
            _ACTING.pop()

    wrapper.__liebian_guarded__ = True  # type: ignore[attr-defined]  # a marker on the function object
    return wrapper


def install(app: typer.Typer, prefix: tuple[str, ...] = ()) -> None:
    """Guard every command of `app`, whose commands are reached as `liebian <prefix> <command>`."""
    for path, info in _iter_infos(app, prefix):
        if info.callback is not None:  # a registered command always has one
            info.callback = guarded(path, info.callback)

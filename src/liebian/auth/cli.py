"""`liebian auth …`: users, roles, API keys, the audit log."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import typer

from liebian.auth import policy, service
from liebian.auth.cli_guard import acting, current_principal
from liebian.cells import safe_record
from liebian.db.session import session_scope
from liebian.output import Format, console, emit, err_console

app = typer.Typer(no_args_is_help=True)
audit_app = typer.Typer(no_args_is_help=True, help="The audit log: list, verify, export.")
app.add_typer(audit_app, name="audit")


def _fail(exc: service.AuthError) -> None:
    err_console.print(f"[red]{exc.message}[/red]")
    raise typer.Exit(2 if exc.status in (404, 409, 422) else 1) from exc


@app.command("create-user")
def create_user(
    username: str = typer.Argument(..., help="Login name."),
    role: str = typer.Option(..., "--role", help=f"One of {', '.join(policy.ROLES)}."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input instead of generating one."
    ),
) -> None:
    """Create a console user. Without --password-stdin a one-time password is printed once; the
    user should change it (liebian auth reset-password) on first use."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else service.generate_password()
    try:
        with session_scope() as s:
            service.create_user(
                s,
                username,
                password,
                role,
                actor=acting().name,
                ip="cli",
                must_change_password=not password_stdin,
            )
    except service.AuthError as exc:
        _fail(exc)
    console.print(f"created user [bold]{username}[/bold] ({role})")
    if not password_stdin:
        console.print(f"one-time password (shown once): [bold]{password}[/bold]")


@app.command("users")
def users(fmt: Format = typer.Option(Format.table, "--format")) -> None:
    """List console users."""
    with session_scope() as s:
        emit([dict(user) for user in service.list_users(s)], fmt)


@app.command("set-role")
def set_role(username: str = typer.Argument(...), role: str = typer.Argument(...)) -> None:
    """Change a user's role."""
    try:
        with session_scope() as s:
            service.set_role(s, username, role, actor=acting().name, ip="cli")
    except service.AuthError as exc:
        _fail(exc)
    console.print(f"{username} is now {role}")


@app.command("deactivate")
def deactivate(username: str = typer.Argument(...)) -> None:
    """Deactivate a user: their sessions and keys stop working at once."""
    try:
        with session_scope() as s:
            service.set_active(s, username, False, actor=acting().name, ip="cli")
    except service.AuthError as exc:
        _fail(exc)
    console.print(f"{username} deactivated")


@app.command("reset-password")
def reset_password(
    username: str = typer.Argument(...),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the new password from stdin."),
) -> None:
    """Set a new password (generated and printed once unless read from stdin)."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else service.generate_password()
    try:
        with session_scope() as s:
            service.reset_password(s, username, password, actor=acting().name, ip="cli")
    except service.AuthError as exc:
        _fail(exc)
    if not password_stdin:
        console.print(f"new one-time password for {username} (shown once): [bold]{password}[/bold]")


@app.command("create-key")
def create_key(
    name: str = typer.Option("", "--name", help="What the key is for."),
    kind: str = typer.Option("service", "--kind", help="user | service | public"),
    username: str | None = typer.Option(None, "--owner", help="Owner (kind user)."),
    role: str | None = typer.Option(None, "--role", help="Role (kind service)."),
    scopes: list[str] = typer.Option([], "--scope", help="Limit the key to these permissions (repeat)."),
    expires_days: int = typer.Option(90, "--expires-days", help="Days until it expires (0 = never)."),
    public: bool = typer.Option(False, "--public", help="The public write-only key for front ends."),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    if public:
        kind = "public"
    try:
        with session_scope() as s:
            plaintext, record = service.create_api_key(
                s,
                name=name,
                actor=acting().name,
                kind=kind,
                username=username,
                role=role,
                scopes=scopes,
                expires_days=expires_days or None,
                ip="cli",
            )
            view = dict(service.key_view(record, username))
    except service.AuthError as exc:
        _fail(exc)
    view["key"] = plaintext
    if fmt is Format.table:
        console.print(
            f"API key {view['key_id']} ({kind}); shown once, store it now:\n[bold]{plaintext}[/bold]"
        )
    else:
        emit(view, fmt)


@app.command("keys")
def keys(fmt: Format = typer.Option(Format.table, "--format")) -> None:
    """List API keys (never the keys themselves)."""
    with session_scope() as s:
        emit([dict(key) for key in service.list_api_keys(s)], fmt)


@app.command("revoke-key")
def revoke_key(key_id: str = typer.Argument(..., help="The key id, e.g. lb_0a1b2c3d4e5f.")) -> None:
    """Revoke an API key at once."""
    try:
        with session_scope() as s:
            service.revoke_api_key(s, key_id, actor=acting().name, ip="cli")
    except service.AuthError as exc:
        _fail(exc)
    console.print(f"{key_id} revoked")


@app.command("policy")
def show_policy(fmt: Format = typer.Option(Format.table, "--format")) -> None:
    """The permission matrix: which role holds which permission."""
    rows = [
        {"permission": p, **{r: ("✓" if p in policy.permissions_of(r) else "") for r in policy.ROLES}}
        for p in policy.PERMISSIONS
    ]
    emit(rows, fmt, title="roles × permissions")


@app.command("whoami")
def whoami() -> None:
    """Who the CLI acts as (from LIEBIAN_API_KEY, --user/LIEBIAN_USER, or the bootstrap admin)."""

    try:
        p = current_principal()
    except service.AuthError as exc:
        _fail(exc)
    console.print(f"{p.name} ({p.role or p.kind}): {', '.join(sorted(p.permissions))}")


@audit_app.command("list")
def audit_list(
    actor: str | None = typer.Option(None, "--actor"),
    action: str | None = typer.Option(None, "--action", help="Prefix, e.g. login or http.post."),
    limit: int = typer.Option(100, "--limit"),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Show audit entries (auditors only)."""
    with session_scope() as s:
        rows = service.audit_entries(s, actor=actor, action=action, limit=limit)
    for r in rows:
        r["detail"] = json.dumps(r["detail"], ensure_ascii=False, sort_keys=True)
        if fmt is Format.table:
            r.pop("prev_hash")
            r["hash"] = r["hash"][:12]
    emit(rows, fmt, title="audit log")


@audit_app.command("verify")
def audit_verify() -> None:
    """Replay the audit hash chain; exit 1 when it was tampered with."""
    with session_scope() as s:
        result = service.verify_audit(s)
    if result["ok"]:
        console.print(f"[green]audit chain intact[/green]: {result['entries']} entries")
        return
    err_console.print(f"[red]audit chain broken at seq {result['bad_seq']}: {result['reason']}[/red]")
    raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    out: Path = typer.Option(..., "--out", help="File to write (.jsonl or .csv)."),
) -> None:
    """Export the whole audit log with its hashes."""
    with session_scope() as s:
        rows = service.audit_entries(s, limit=None)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        with out.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(
                fh, fieldnames=["seq", "ts", "actor", "action", "target", "detail", "ip", "prev_hash", "hash"]
            )
            writer.writeheader()
            for r in rows:
                detail = json.dumps(r["detail"], ensure_ascii=False, sort_keys=True)
                writer.writerow(safe_record({**r, "detail": detail}))
    else:
        with out.open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
    console.print(f"exported {len(rows)} audit entries to {out}")

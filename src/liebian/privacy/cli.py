"""`liebian privacy …`: notices, consent, data-subject requests, reveal, retention, key rotation."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from liebian.auth.cli_guard import acting
from liebian.auth.service import audit
from liebian.db.session import session_scope
from liebian.output import Format, console, emit, err_console
from liebian.privacy import crypto, service, subject_requests, watermark
from liebian.privacy import inventory as data_inventory
from liebian.privacy import retention as retention_policy

app = typer.Typer(no_args_is_help=True)
notice_app = typer.Typer(no_args_is_help=True, help="Versioned privacy notices.")
consent_app = typer.Typer(no_args_is_help=True, help="Consent per person and purpose.")
app.add_typer(notice_app, name="notice")
app.add_typer(consent_app, name="consent")


def _fail(exc: service.PrivacyError) -> None:
    err_console.print(f"[red]{exc.message}[/red]")
    raise typer.Exit(2) from exc


@notice_app.command("publish")
def notice_publish(
    title: str = typer.Option(..., "--title"),
    body_file: Path = typer.Option(..., "--body-file", exists=True, dir_okay=False, help="The notice text."),
    purposes: list[str] = typer.Option(
        ..., "--purpose", help="collection, marketing, analytics, sharing (repeat)."
    ),
    reconsent: list[str] = typer.Option(
        [], "--reconsent", help="Purposes whose consent must be given again."
    ),
) -> None:
    """Publish a new version of the privacy notice."""
    try:
        with session_scope() as s:
            n = service.publish_notice(
                s,
                title=title,
                body=body_file.read_text(encoding="utf-8"),
                purposes=purposes,
                reconsent_purposes=reconsent,
                actor=acting().name,
                ip="cli",
            )
    except service.PrivacyError as exc:
        _fail(exc)
    console.print(f"published privacy notice version {n['version']}")


@notice_app.command("list")
def notice_list(fmt: Format = typer.Option(Format.table, "--format")) -> None:
    """List the published notice versions."""
    with session_scope() as s:
        rows = service.list_notices(s)
    emit([{k: v for k, v in r.items() if k != "body"} for r in rows], fmt)


@consent_app.command("record")
def consent_record(
    person_id: int = typer.Argument(...),
    purpose: str = typer.Argument(..., help="collection, marketing, analytics or sharing."),
    withdraw: bool = typer.Option(False, "--withdraw", help="Record a withdrawal instead of a grant."),
    source: str = typer.Option("cli", "--source"),
) -> None:
    """Record a grant (or with --withdraw a withdrawal) of consent."""
    try:
        with session_scope() as s:
            r = service.record_consent(
                s, person_id, purpose, not withdraw, source=source, actor=acting().name
            )
    except service.PrivacyError as exc:
        _fail(exc)
    console.print(f"person {r['person_id']}: {purpose} {'granted' if r['granted'] else 'withdrawn'}")


@consent_app.command("show")
def consent_show(
    person_id: int = typer.Argument(...), fmt: Format = typer.Option(Format.table, "--format")
) -> None:
    """A person's consent per purpose."""
    try:
        with session_scope() as s:
            rows = service.consent_state(s, person_id)
    except service.PrivacyError as exc:
        _fail(exc)
    emit(rows, fmt)


@app.command("inventory")
def inventory(fmt: Format = typer.Option(Format.table, "--format")) -> None:
    """The data inventory, measured: every table, export and rejects file scanned for personal data."""
    emit(data_inventory.data_inventory(), fmt, title="data inventory")


@app.command("export")
def export(
    person_id: int = typer.Argument(...),
    out: Path = typer.Option(..., "--out", help="JSON file to write (it holds personal data: keep it safe)."),
    reason: str = typer.Option("", "--reason"),
) -> None:
    """Export everything about a person (both stores) to a JSON file."""
    try:
        with session_scope() as s:
            data = subject_requests.export_person(s, person_id, actor=acting().name, ip="cli", reason=reason)
    except service.PrivacyError as exc:
        _fail(exc)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    out.chmod(0o600)
    console.print(f"exported person {data['person_id']} to {out}")


@app.command("delete")
def delete(
    person_id: int = typer.Argument(...),
    reason: str = typer.Option("", "--reason"),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Erase a person's identifiers from both stores; prints the verifiable record."""
    if not yes:
        typer.confirm(f"erase person {person_id}'s identifiers from both stores?", abort=True)
    try:
        record = subject_requests.erase_person(person_id, actor=acting().name, ip="cli", reason=reason)
    except service.PrivacyError as exc:
        _fail(exc)
    if fmt is Format.table:
        console.print(
            f"erased person {person_id}: request {record['request_id']}, record hash {record['record_hash']}"
        )
        emit(
            [{"store.table": f"op.{k}", "rows": v} for k, v in record["operational"].items()]
            + [{"store.table": f"wh.{k}", "rows": v} for k, v in record["warehouse"].items()],
            fmt,
        )
        console.print(f"traces left: {sum(record['traces_after'].values())}")
    else:
        emit(record, fmt)


@app.command("requests")
def requests(fmt: Format = typer.Option(Format.table, "--format")) -> None:
    """Data-subject requests done so far, with their record hashes."""
    with session_scope() as s:
        rows = subject_requests.list_requests(s)
    for r in rows:
        r["record"] = (
            json.dumps(r["record"], ensure_ascii=False)[:200] if fmt is Format.table else r["record"]
        )
    emit(rows, fmt)


@app.command("reveal")
def reveal(
    person_id: int = typer.Argument(...),
    reason: str = typer.Option(..., "--reason", help="Why (written to the audit log)."),
    id_type: str = typer.Option("phone", "--id-type"),
) -> None:
    """Decrypt a person's phone (audited)."""
    try:
        with session_scope() as s:
            values = subject_requests.reveal(
                s, person_id, id_type, actor=acting().name, ip="cli", reason=reason
            )
    except service.PrivacyError as exc:
        _fail(exc)
    for v in values:
        console.print(v)


@app.command("rotate-key")
def rotate_key() -> None:
    """Make a new AES-256 key active (key file); then run `liebian privacy reencrypt`."""
    try:
        kid = crypto.rotate_encryption_key()
    except crypto.KeyError_ as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc

    with session_scope() as s:
        audit(s, acting().name, "privacy.key.rotate", f"encryption-key:{kid}", {}, "cli")
    console.print(
        f"encryption key {kid} is active; run `liebian privacy reencrypt` to re-seal old ciphertexts"
    )


@app.command("reencrypt")
def reencrypt() -> None:
    """Re-seal every ciphertext under the active key; shows the keys still in use."""
    with session_scope() as s:
        counts = retention_policy.reencrypt_all(s)
        usage = retention_policy.key_usage(s)
    console.print(f"re-encrypted: {counts}; ciphertexts per key now: {usage}")


@app.command("retention")
def retention() -> None:
    """Apply the retention policy now (also a scheduled job: privacy-retention)."""
    deleted = retention_policy.apply_retention(actor=acting().name)
    console.print(f"deleted by retention: {deleted}")


@app.command("trace")
def trace(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="An exported file, or rows pasted into one."
    ),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Name the export (who, when, what, which filter) a file or a pasted excerpt came from."""
    with session_scope() as s:
        result = watermark.trace(s, file.read_bytes())
    if fmt is Format.json:
        emit(result, fmt)
        return
    if not result["exports"]:
        console.print("no export mark found in this file")
        raise typer.Exit(1)
    emit(result["exports"], fmt, title=f"verdict: {result['verdict']}")

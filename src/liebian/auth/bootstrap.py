"""The first admin of a fresh install.

When the server starts on a store without users it creates `admin` with a random one-time password,
prints it once to the server's standard error and writes it to `<data dir>/initial-admin-password`
(owner-only). The password must be changed at first use (`liebian auth reset-password admin
--user admin`), after which the file is removed. Nothing is created when any user exists, and no
default password exists anywhere in the code or the docs. From the CLI, the first admin is made
with `liebian auth create-user NAME --role admin` (the local bootstrap, see auth.cli_guard).
"""

from __future__ import annotations

import os
import sys

from liebian.auth import service
from liebian.config import get_settings
from liebian.db.session import session_scope


def ensure_first_admin() -> str | None:
    """Create `admin` if the store has no users; returns the one-time password (or None)."""
    with session_scope() as s:
        if service.has_users(s):
            return None
        password = service.generate_password()
        service.create_user(
            s, "admin", password, "admin", actor="system:bootstrap", must_change_password=True
        )
    path = get_settings().data_dir / service.PASSWORD_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")
    # stderr, not the log: a secret, shown once to whoever started the server
    print(
        f"liebian: created the first admin user 'admin' with the one-time password {password} "
        f"(also in {path}; change it with `liebian auth reset-password admin --user admin`)",
        file=sys.stderr,
    )
    return password

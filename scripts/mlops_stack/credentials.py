"""The stack's generated secrets: the admin password and the API's JWT secret and Fernet key.

Generated once per state directory, kept in private files (0600) and never printed: messages name
the passwords file instead.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import TYPE_CHECKING

from mlops_stack.paths import read_private_json, write_private

if TYPE_CHECKING:
    from mlops_stack.paths import Paths

ADMIN_USER = "admin"


def ensure_secrets(paths: Paths) -> dict[str, str]:
    """Return the JWT secret and Fernet key, generating them on the first run."""
    if paths.secrets.exists():
        return read_private_json(paths.secrets)
    values = {
        "jwt_secret": secrets.token_urlsafe(64),  # 64 random bytes
        "fernet_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }
    write_private(paths.secrets, json.dumps(values, indent=2) + "\n")
    return values


def ensure_password(paths: Paths) -> str:
    """Return the admin password, generating the passwords file on the first run."""
    stored = read_password(paths)
    if stored:
        return stored
    password = secrets.token_urlsafe(16)
    write_private(paths.passwords, json.dumps({ADMIN_USER: password}) + "\n")
    return password


def read_password(paths: Paths) -> str | None:
    """The admin password from the passwords file (None if there is none yet)."""
    if not paths.passwords.exists():
        return None
    return read_private_json(paths.passwords).get(ADMIN_USER) or None

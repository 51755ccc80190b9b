"""The secret key that signs session cookies (and so every role in every room).

Never in the repository. Read from ``DJANGO_SECRET_KEY``, else from a key file (``.secret-key``
beside manage.py, or ``DISTVIZ_SECRET_KEY_FILE``). ``ensure()`` makes that file on first run:
384 bits from ``secrets``, written readable by its owner only, and reused from then on. Run as
``python -m distviz.secretkey`` it does exactly that, before settings are imported (``make run``
and ``make classroom`` do).
"""
from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
MIN_LENGTH = 43  # 256 bits as url-safe base64


def key_file() -> Path:
    return Path(os.environ.get("DISTVIZ_SECRET_KEY_FILE") or BASE_DIR / ".secret-key")


def read(path: Path | None = None) -> str:
    path = path or key_file()
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return ""
    if len(key) < MIN_LENGTH:
        raise RuntimeError(f"{path} holds a key shorter than 256 bits: delete it and a new one is made on the next start")
    return key


def ensure(path: Path | None = None) -> str:
    """The key in the key file, made now if there is none (safe when two processes race)."""
    path = path or key_file()
    key = read(path)
    if key:
        return key
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read(path)  # another process made it first: use theirs
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key


if __name__ == "__main__":
    made = not key_file().exists()
    ensure()
    if made:
        print(f"distviz: made a new secret key in {key_file()} (readable by you only; keep it out of git)", file=sys.stderr)

"""File names as they are stored and as they go out in a download's ``Content-Disposition``.

A header value is Latin-1 on the wire: a name such as ``现场照片.jpg`` put into ``filename="..."`` made
every download of it a 500, and a quote, a backslash or a CR/LF in a name could break (or forge) the
header. A download therefore carries both forms of RFC 6266: an ASCII ``filename="..."`` for old
clients (non-ASCII replaced, quotes, backslashes and control characters gone) and
``filename*=UTF-8''<percent-encoded>`` (RFC 5987), which every current browser prefers.

Pure functions (no database): the web chat's file route uses them too.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath
from urllib.parse import quote

# Characters that never belong in a stored name: path separators and every control character
# (C0, DEL, C1), CR and LF included.
_UNSAFE = re.compile(r"[\\/\x00-\x1f\x7f-\x9f]")
# In the ASCII fallback: a quote or backslash would end or escape the quoted string; ";" and "," split
# naive parsers' parameter lists; "%" makes some clients percent-decode the plain form.
_FALLBACK_DROP = re.compile(r'["\\;,%]')
# The name column holds 200 characters; 150 leaves room and keeps a header of Chinese characters
# (9 bytes each percent-encoded) under 3 KB.
MAX_NAME_CHARS = 150
_MAX_SUFFIX_CHARS = 16


def clean_filename(name: str | None, default: str = "file") -> str:
    """A name safe to store and show: no directories, no control characters, at most
    :data:`MAX_NAME_CHARS` characters (a long one is cut before its extension, which is kept)."""
    cleaned = _UNSAFE.sub("_", unicodedata.normalize("NFC", name or "")).strip().strip(".")
    if not cleaned:
        return default
    if len(cleaned) <= MAX_NAME_CHARS:
        return cleaned
    suffix = PurePosixPath(cleaned).suffix
    if len(suffix) > _MAX_SUFFIX_CHARS:
        suffix = ""
    return cleaned[: MAX_NAME_CHARS - len(suffix)] + suffix


def ascii_fallback(name: str, default: str = "file") -> str:
    """The name for ``filename="..."``: printable ASCII only, nothing that ends the quoted string.
    Accents lose their marks (``é`` is ``e``); other characters become ``_``; a name with no ASCII
    letter or digit left before its extension is ``file`` with that extension."""
    decomposed = unicodedata.normalize("NFKD", clean_filename(name, default))
    kept = "".join(c if " " <= c <= "~" else "_" for c in decomposed if not unicodedata.combining(c))
    fallback = _FALLBACK_DROP.sub("", kept).strip()
    path = PurePosixPath(fallback or default)
    if not any(c.isalnum() for c in path.stem):
        suffix = path.suffix if any(c.isalnum() for c in path.suffix) else ""
        return default + suffix
    return fallback


def content_disposition(name: str | None, *, disposition: str = "attachment", default: str = "file") -> str:
    """``attachment; filename="..."; filename*=UTF-8''...`` for any name (RFC 6266, RFC 5987)."""
    cleaned = clean_filename(name, default)
    encoded = quote(cleaned, safe="")
    return f"{disposition}; filename=\"{ascii_fallback(cleaned, default)}\"; filename*=UTF-8''{encoded}"

"""Tencent Cloud API 3.0 request signing (TC3-HMAC-SHA256), as Tencent's "签名方法 v3" documents it.

The signature covers the method, the path, the query string, the signed headers (names and values in
lower case, sorted by name), and the SHA-256 of the exact body bytes. It is bound to one UTC day and one
service through a derived key: ``HMAC("TC3" + key, date) -> HMAC(., service) -> HMAC(., "tc3_request")``.
The body is signed as the bytes that go on the wire, so callers sign after serialising and send exactly
those bytes.

Checked against Tencent's published worked example (DescribeInstances, timestamp 1551113065) and against
the official SDK's signer in tests/bot/test_sms_tencent.py.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

ALGORITHM = "TC3-HMAC-SHA256"
TERMINATOR = "tc3_request"
# What the SDKs sign; Tencent accepts any superset (its newer worked example adds x-tc-action).
DEFAULT_SIGNED_HEADERS: tuple[str, ...] = ("content-type", "host")


@dataclass(frozen=True)
class Tc3Signature:
    canonical_request: str
    string_to_sign: str
    signature: str
    authorization: str
    date: str  # UTC date of the timestamp, YYYY-MM-DD: part of the credential scope


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def utc_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def signing_key(secret_key: str, date: str, service: str) -> bytes:
    return _hmac(_hmac(_hmac(("TC3" + secret_key).encode("utf-8"), date), service), TERMINATOR)


def canonical_request(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    payload: bytes,
) -> str:
    """The six-line canonical request; ``headers`` keys are matched case-insensitively."""
    lowered = {name.lower(): value for name, value in headers.items()}
    names = sorted(name.lower() for name in signed_headers)
    canonical_headers = "".join(f"{name}:{lowered[name].strip().lower()}\n" for name in names)
    return "\n".join([method.upper(), path, query, canonical_headers, ";".join(names), sha256_hex(payload)])


def sign(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    timestamp: int,
    headers: Mapping[str, str],
    payload: bytes,
    method: str = "POST",
    path: str = "/",
    query: str = "",
    signed_headers: Sequence[str] = DEFAULT_SIGNED_HEADERS,
) -> Tc3Signature:
    """Sign one request. ``headers`` must contain every header named in ``signed_headers``."""
    date = utc_date(timestamp)
    request = canonical_request(
        method=method, path=path, query=query, headers=headers, signed_headers=signed_headers, payload=payload
    )
    scope = f"{date}/{service}/{TERMINATOR}"
    to_sign = "\n".join([ALGORITHM, str(timestamp), scope, sha256_hex(request.encode("utf-8"))])
    signature = hmac.new(signing_key(secret_key, date, service), to_sign.encode("utf-8"), hashlib.sha256)
    names = ";".join(sorted(name.lower() for name in signed_headers))
    authorization = f"{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={names}, Signature={signature.hexdigest()}"
    return Tc3Signature(
        canonical_request=request,
        string_to_sign=to_sign,
        signature=signature.hexdigest(),
        authorization=authorization,
        date=date,
    )

"""SMS, an outbound channel of the outbox: providers behind one small interface (``provider.py``).

``build_provider(settings)`` gives the configured one: ``log`` (the embedded default, nothing leaves the
machine) or ``tencent`` (Tencent Cloud SMS, ``tencent.py``).
"""

from __future__ import annotations

from bot.channels.sms.log import LoggedSms, LogSmsProvider, read_log
from bot.channels.sms.pacing import NumberPacer
from bot.channels.sms.provider import (
    MAX_NUMBERS_PER_CALL,
    SmsBatch,
    SmsProvider,
    SmsProviderSettings,
    SmsReceipt,
    SmsReply,
    SmsResult,
    mask_phone,
    normalize_phone,
    sms_segments,
)
from bot.channels.sms.tencent import (
    CALLBACK_OK,
    SmsCallbackError,
    TencentSmsProvider,
    is_unsubscribe,
    parse_reply_callback,
    parse_status_callback,
)

__all__ = [
    "CALLBACK_OK",
    "MAX_NUMBERS_PER_CALL",
    "LogSmsProvider",
    "LoggedSms",
    "NumberPacer",
    "SmsBatch",
    "SmsCallbackError",
    "SmsProvider",
    "SmsProviderSettings",
    "SmsReceipt",
    "SmsReply",
    "SmsResult",
    "TencentSmsProvider",
    "build_provider",
    "is_unsubscribe",
    "mask_phone",
    "normalize_phone",
    "parse_reply_callback",
    "parse_status_callback",
    "read_log",
    "sms_segments",
]


def build_provider(settings: SmsProviderSettings) -> SmsProvider:
    if settings.provider == "tencent":
        return TencentSmsProvider(settings)
    return LogSmsProvider(directory=settings.log_dir, ring_size=settings.log_ring_size)

"""SMS, an outbound channel of the outbox: providers behind one small interface (``provider.py``).

``build_provider(settings)`` gives the configured one: ``log`` (the embedded default, nothing leaves the
machine) or ``tencent`` (Tencent Cloud SMS, ``tencent.py``).
"""

from __future__ import annotations

from redis.asyncio import Redis

from bot.channels.sms.log import LoggedSms, LogSmsProvider, read_log
from bot.channels.sms.pacing import NumberPacer, RedisNumberPacer
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
    "RedisNumberPacer",
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
        return TencentSmsProvider(settings, pacer=shared_pacer(settings))
    return LogSmsProvider(directory=settings.log_dir, ring_size=settings.log_ring_size)


def shared_pacer(settings: SmsProviderSettings) -> RedisNumberPacer | None:
    """With Redis, every worker paces against one bucket: the provider's rate is the account's."""
    if not settings.redis_url:
        return None
    redis = Redis.from_url(settings.redis_url)
    return RedisNumberPacer(redis, settings.rate_per_second, burst=settings.numbers_per_call)

"""Settings for every Tianbao process, read from the environment (prefix ``TIANBAO_``).

The defaults are the embedded profile: a SQLite file under ``./var/``, memory FSM storage, the
in-process scheduler and delivery worker, and the demo payment provider. ``TIANBAO_PROFILE=production``
refuses the defaults that are only safe on a developer's laptop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

import messages
from messages.sms import configure_site, sms_template_keys, template_id_key

DEFAULT_VAR_DIR = Path("var")
# Listening on every interface: a link needs an address a browser can open, and loopback is the one
# that surely works on the machine itself (others set TIANBAO_PUBLIC_URL).
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def unmapped_sms_templates(template_ids: dict[str, str]) -> list[str]:
    """Every SMS template (both languages) that has no provider template id."""
    return [
        template_id_key(key, locale)
        for locale in messages.LOCALES
        for key in sms_template_keys(locale)
        if not template_ids.get(template_id_key(key, locale), "").strip()
    ]


class ProductionSettingsError(ValueError):
    """A production profile was asked for with a development-only setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIANBAO_", env_file=".env", extra="ignore")

    profile: Literal["embedded", "production"] = "embedded"
    var_dir: Path = DEFAULT_VAR_DIR
    database_url: str = ""
    redis_url: str = ""

    # Secrets: made on first run when unset and kept in ``var/secrets.json`` (mode 0600) by
    # ``keep_generated_secrets``, so printed QR codes, staff tokens and links outlive a restart; refused
    # unset in production, where several processes must agree.
    secret_key: str = ""
    service_token: str = ""
    admin_password: str = ""

    host: str = "127.0.0.1"
    port: int = 8000
    # TIANBAO_PUBLIC_URL: the address users reach (behind a proxy, in compose). Unset, links follow the
    # real host and port; read it through ``public_url``, which is worked out on every read, so a copy
    # with another port (``tianbao serve --port``) never keeps a stale address.
    configured_public_url: str = Field(default="", validation_alias="TIANBAO_PUBLIC_URL")
    backend_url: str = ""

    bot_token: str = ""
    bot_username: str = "TianbaoBot"
    webhook_url: str = ""
    webhook_secret: str = ""
    telegram_api_base: str = ""
    allow_paid_broadcast: bool = False

    # Where urgent staff alerts go (R-LIA-6 accidents, R-CLM-5 catastrophes): e.g. a Telegram group id.
    staff_alert_channel: Literal["telegram", "webchat"] = "telegram"
    staff_alert_address: str = ""
    # R-LIA-6: an accident report on a liability policy is sent at once to the operations centre and the
    # work-safety authority (an outbox channel and address each; empty: not configured, not sent).
    operations_centre_channel: Literal["telegram", "webchat"] = "telegram"
    operations_centre_address: str = ""
    safety_authority_channel: Literal["telegram", "webchat"] = "telegram"
    safety_authority_address: str = ""

    payment_provider: Literal["demo", "telegram", "offline"] = "demo"
    # From @BotFather's payment settings, for Telegram Payments invoices in CNY.
    telegram_payment_provider_token: str = ""
    default_locale: Literal["zh-CN", "en"] = "zh-CN"
    # The zone of every time shown to people (chat, PDFs, notices, staff alerts); storage stays UTC.
    timezone: str = messages.DEFAULT_TIMEZONE

    # The insurer's contacts, shown in /help, on every PDF and wherever a message sends someone to a
    # person. Empty ones are left out (a message then points to this chat), never shown blank.
    insurer_name: str = ""
    insurer_hotline: str = ""
    insurer_office: str = ""  # the local office's name and address
    insurer_office_phone: str = ""

    access_token_minutes: int = 12 * 60
    # Staff sign-in (backend/staff/signin.py, docs/operations.md "Staff sign-in"): attempts allowed per
    # username and per client address in a window, and the lock after consecutive failures.
    sign_in_window_seconds: int = Field(default=60, ge=1)
    sign_in_per_username: int = Field(default=5, ge=1)
    sign_in_per_address: int = Field(default=20, ge=1)
    sign_in_max_failures: int = Field(default=10, ge=1)
    sign_in_lockout_minutes: int = Field(default=15, ge=1)
    identity_cache_seconds: float = 30.0
    # How long the backend's identity directory trusts an entry it was not told to drop.
    identity_directory_seconds: float = 600.0
    # Once started, hide what startup built (modules, schemas, routes, templates, reference data) from
    # the cyclic garbage collector: a full collection then takes ~90 ms instead of ~500 ms.
    gc_freeze_after_startup: bool = True
    # FastAPI's native OpenTelemetry (spans, metrics, logs to the global providers). Off, it costs
    # nothing; on, FastAPI asks the global providers on every request (~7 µs) whether any is set up.
    telemetry: bool = False

    delivery_batch_size: int = Field(default=50, ge=1, le=500)  # the claim API takes at most 500
    # Chats a delivery worker sends to at once: also the most messages a crash of it can leave sent but
    # unrecorded (one per chat), so the most it can duplicate (docs/architecture.md, "the bound"). 30 fills
    # Telegram's free 30/s; paid broadcast at 1,000/s wants more (benchmarks/warning_delivery.py).
    delivery_max_parallel_chats: int = Field(default=30, ge=1, le=1000)
    delivery_poll_seconds: float = 0.5
    delivery_lease_seconds: int = 60
    delivery_max_attempts: int = 6
    telegram_global_rate: str = "30/second"
    telegram_paid_global_rate: str = "1000/second"
    telegram_chat_rate: str = "1/second"
    telegram_group_rate: str = "20/minute"

    # SMS (docs/operations.md "SMS"): "log" keeps every text on this machine (shown at /dev/sms);
    # "tencent" sends through Tencent Cloud SMS. Templates: messages/<locale>/sms/templates.json, each
    # mapped to its approved provider id in TIANBAO_SMS_TEMPLATE_IDS ({"zh-CN/otp": "1234567", ...}).
    sms_provider: Literal["log", "tencent"] = "log"
    sms_sign_name: str = "田保"
    sms_template_ids: dict[str, str] = Field(default_factory=dict)
    sms_rate_per_second: float = Field(default=200.0, gt=0)
    tencent_sms_secret_id: str = ""
    tencent_sms_secret_key: str = ""
    tencent_sms_app_id: str = ""
    tencent_sms_region: str = "ap-guangzhou"
    tencent_sms_endpoint: str = "https://sms.tencentcloudapi.com"
    # One-time codes per number (the provider's own limits are the same or looser).
    sms_codes_per_minute: int = Field(default=1, ge=1)
    sms_codes_per_hour: int = Field(default=5, ge=1)
    sms_codes_per_day: int = Field(default=10, ge=1)
    # No bulk text between these local times (warnings excepted); "21:00"-"08:00" wraps midnight.
    sms_quiet_start: str = Field(default="21:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    sms_quiet_end: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    # How long a link in a text opens the web chat.
    sms_link_days: int = Field(default=30, ge=1)

    webchat_max_upload_bytes: int = 10 * 1024 * 1024
    # Every uploaded photo is decoded whole (backend/images.py); one with more pixels than this is
    # refused from its header, before decoding (a tiny PNG can claim 400 million pixels).
    max_image_pixels: int = Field(default=40_000_000, ge=1_000_000)
    # Request bodies at the edge (backend/edge.py), refused with 413 past these: JSON and every other
    # non-multipart body (the largest real one, 5,000 claim ids, is ~60 KB), and multipart uploads (the
    # largest file limit, 10 MB, plus the form's framing; never below the web chat's upload limit).
    max_json_body_bytes: int = Field(default=256 * 1024, ge=1024)
    max_upload_body_bytes: int = Field(default=10 * 1024 * 1024 + 64 * 1024, ge=1024)
    # A household list (staff upload, ``/api/collective/lists...``): 100,000 rows of CSV are about 11 MB,
    # so the list routes take up to this much; every other upload keeps the cap above.
    household_list_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    webchat_history_limit: int = 500
    # Web chat limits (bot/channels/webchat/limits.py; docs/operations.md "Web chat limits"): per chat
    # and per client address, in fixed windows counted in Redis when configured. An office or a village
    # behind one address shares the address limits, so they are well above one person's.
    webchat_messages_per_minute: int = Field(default=60, ge=1)
    webchat_messages_per_minute_per_address: int = Field(default=600, ge=1)
    webchat_uploads_per_hour: int = Field(default=30, ge=1)
    webchat_uploads_per_hour_per_address: int = Field(default=200, ge=1)
    webchat_upload_bytes_per_hour: int = Field(default=100 * 1024 * 1024, ge=1024 * 1024)
    webchat_upload_bytes_per_hour_per_address: int = Field(default=500 * 1024 * 1024, ge=1024 * 1024)
    webchat_new_chats_per_hour_per_address: int = Field(default=60, ge=1)
    # A web chat bound to no person and silent this long is deleted with its transcript, conversation
    # state and files (the hourly scheduler job "webchat-expiry", backend/chatstore/jobs.py).
    webchat_idle_days: int = Field(default=7, ge=1)

    embedded_worker: bool = True
    embedded_scheduler: bool = True
    embedded_polling: bool = True

    generated_secrets: set[str] = Field(default_factory=set, exclude=True)
    derived_webhook_secret: bool = Field(default=False, exclude=True)

    # Callback surveys after claim payments (backend/callbacks/, R-CBK-1 to R-CBK-5). The rule's floor
    # is the minimum: 5 per mille of those paid, 3 households per collective case; a year's retention.
    callback_sample_permille: int = Field(default=5, ge=5, le=1000)
    callback_households_per_case: int = Field(default=3, ge=3)
    callback_draw_hour: int = Field(default=9, ge=0, le=23)  # local hour from which the day's draw runs
    callback_reminder_hours: int = Field(default=48, ge=1)
    callback_unreachable_hours: int = Field(default=48, ge=1)
    callback_retention_days: int = Field(default=366, ge=365)
    # Publicity notices (backend/publicity): open at least this long from opening (R-PUB-1, R-ENR-8:
    # "3 days" read as 72 hours), and staff answer an objection within this many days.
    publicity_min_open_hours: int = Field(default=72, ge=72)
    publicity_objection_due_days: int = Field(default=3, ge=1)
    # Official CAP 1.2 warnings (backend/alerts/warnings): feed URLs polled by the scheduler (separated by
    # spaces or commas; an Atom/RSS feed of CAP entries or one CAP document), and whether an Extreme and
    # Immediate alert goes to farmers at once, without waiting for staff approval.
    cap_feeds: str = ""
    cap_auto_send_extreme: bool = False
    cap_feed_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Broadcasts (backend/broadcasts): a fan-out to more people than this waits for a second staff
    # member's approval (four eyes); at or below it the creator sends it.
    broadcast_approval_threshold: int = Field(default=500, ge=0)
    # Safety inspections (backend/inspections, R-LIA-5): reminders before the appointment and before each
    # rectification deadline; the report's summary is POSTed to the safety authority's address (empty: kept
    # as "unconfigured" until one is set), with this bearer token when given.
    inspection_reminder_hours: int = Field(default=24, ge=1)
    rectification_reminder_hours: int = Field(default=48, ge=1)
    safety_authority_url: str = Field(default="", max_length=500, pattern=r"^(https?://\S+)?$")
    safety_authority_token: str = Field(default="", max_length=500)

    @model_validator(mode="before")
    @classmethod
    def _public_url_by_name(cls, data: Any) -> Any:
        """``Settings(public_url=...)`` as for every other setting (the env name is the alias)."""
        if isinstance(data, dict) and "public_url" in data:
            data = {**data, "TIANBAO_PUBLIC_URL": data["public_url"]}
            del data["public_url"]
        return data

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"TIANBAO_TIMEZONE: unknown time zone {value!r} (e.g. Asia/Shanghai)") from exc
        return value

    @model_validator(mode="after")
    def _fill_and_check(self) -> Settings:
        if self.profile == "production":
            self._refuse_unsafe_production()
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{(self.var_dir / 'tianbao.db').as_posix()}"
        for name in ("secret_key", "service_token"):
            if not getattr(self, name):
                setattr(self, name, secrets.token_urlsafe(32))
                self.generated_secrets.add(name)
        if not self.webhook_secret:
            self._derive_webhook_secret()
        if self.sms_provider == "tencent":
            self._refuse_incomplete_tencent()
        return self

    def _refuse_incomplete_tencent(self) -> None:
        missing = [
            f"TIANBAO_{name.upper()}"
            for name in (
                "tencent_sms_secret_id",
                "tencent_sms_secret_key",
                "tencent_sms_app_id",
                "sms_sign_name",
            )
            if not getattr(self, name)
        ]
        unmapped = unmapped_sms_templates(self.sms_template_ids)
        if unmapped:
            missing.append("TIANBAO_SMS_TEMPLATE_IDS for " + ", ".join(unmapped))
        if missing:
            raise ValueError("the tencent SMS provider needs " + "; ".join(missing))

    def sms_receipt_token(self) -> str:
        """The secret part of the provider's callback URLs (receipts, replies): the provider signs nothing,
        so only a caller who was given the URL is believed. Derived, so every replica agrees."""
        digest = hmac.new(self.secret_key.encode(), b"tianbao-sms-callback-v1", hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")[:32]

    def _derive_webhook_secret(self) -> None:
        """Unset, the webhook secret is derived from the secret key: every bot replica that shares the key
        checks Telegram's header alike (random ones made each replica answer 403 to the others' updates).
        Telegram allows 1-256 characters of A-Za-z0-9_-."""
        digest = hmac.new(self.secret_key.encode(), b"tianbao-webhook-v1", hashlib.sha256).digest()
        self.webhook_secret = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
        self.derived_webhook_secret = True

    def keep_generated_secrets(self) -> None:
        """The embedded default's secrets, made once: a secret not set in the environment is read from
        ``var/secrets.json``, or made now and written there (0600, atomically). Called by the CLI's
        processes only, so building a ``Settings`` writes nothing."""
        if not self.generated_secrets:
            return
        path = self.var_dir / SECRETS_FILE
        stored: dict[str, str] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        missing = {name: getattr(self, name) for name in self.generated_secrets if name not in stored}
        for name in self.generated_secrets - missing.keys():
            setattr(self, name, stored[name])
        if self.derived_webhook_secret:
            self._derive_webhook_secret()
        if missing:
            _write_private(path, json.dumps({**stored, **missing}, indent=2))
        self.generated_secrets.clear()

    def _refuse_unsafe_production(self) -> None:
        problems: list[str] = []
        if not self.secret_key:
            problems.append("TIANBAO_SECRET_KEY must be set")
        if not self.service_token:
            problems.append("TIANBAO_SERVICE_TOKEN must be set")
        if not self.insurer_hotline.strip():
            # Farmers are told to call it in /help, on every PDF and in every message that sends them
            # to a person; staff still answer chat messages, but a disaster needs a phone.
            problems.append(
                "TIANBAO_INSURER_HOTLINE must be set (shown wherever a message sends someone to a person)"
            )
        if self.payment_provider == "demo":
            problems.append("the demo payment provider is not allowed (TIANBAO_PAYMENT_PROVIDER)")
        if not self.redis_url:
            problems.append("memory FSM storage is not allowed: set TIANBAO_REDIS_URL")
        if not self.database_url or self.database_url.startswith("sqlite"):
            problems.append("SQLite is not allowed: set TIANBAO_DATABASE_URL to PostgreSQL")
        if problems:
            raise ProductionSettingsError("production profile refused: " + "; ".join(problems))

    @property
    def public_url(self) -> str:
        """Where users reach this process: TIANBAO_PUBLIC_URL, else the host and port it listens on."""
        if self.configured_public_url:
            return self.configured_public_url.rstrip("/")
        host = _WILDCARD_HOSTS.get(self.host, self.host)
        if ":" in host and not host.startswith("["):  # an IPv6 literal needs brackets in a URL
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.bot_token)

    def configure_messages(self) -> None:
        """Tell messages/ (which imports nothing of ours) the zone, contacts and site; once per process."""
        configure_site(self.public_url)
        messages.configure(
            timezone=self.timezone,
            contacts=messages.Contacts(
                insurer_name=self.insurer_name,
                hotline=self.insurer_hotline,
                office=self.insurer_office,
                office_phone=self.insurer_office_phone,
            ),
        )


SECRETS_FILE = "secrets.json"


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, whole or not at all (a crash never leaves half a secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()

"""Helpers for enrollment tests: valid identity numbers, QR campaigns, delivery of pushed messages."""

from __future__ import annotations

from typing import Any

import httpx

from tests.harness import ChatUser

# Valid by GB 11643 / GB 32100 check characters (computed, not real people or companies).
VALID_ID = "11010519491231002X"
VALID_CREDIT_CODE = "91350100M000100Y43"
DONGGUAN_TOWNSHIP = "441900003000"  # 东莞市 东城街道 (a township directly under the city)


def resident_id(body17: str) -> str:
    """Complete 17 digits with their ISO 7064 MOD 11-2 check character."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(body17, weights, strict=True))
    return body17 + "10X98765432"[total % 11]


def credit_code(body17: str) -> str:
    """Complete 17 characters of a unified social credit code with their GB 32100 check character."""
    from backend.enrollment.validation import credit_code_check_character

    return body17 + credit_code_check_character(body17)


def own_numbers(key: str) -> tuple[str, str]:
    """A valid resident ID and credit code of the account ``key``'s own (R-ENR-5 binds each number to one
    person only, so two test accounts must not sign as the insured for the same number)."""
    import zlib
    from datetime import date, timedelta

    digest = zlib.crc32(key.encode())
    born = date(1950, 1, 1) + timedelta(days=digest % 10000)
    sequence = (digest // 10000) % 999 + 1
    return (
        resident_id(f"110105{born:%Y%m%d}{sequence:03d}"),
        credit_code(f"91350100MA{digest % 10**7:07d}"),
    )


async def create_campaign(api: httpx.AsyncClient, headers: dict[str, str], product: str, **extra: Any) -> str:
    response = await api.post("/api/campaigns", json={"product_code": product, **extra}, headers=headers)
    assert response.status_code == 201, response.text
    payload: str = response.json()["payload"]
    return payload


async def deliver(embedded: Any) -> int:
    """Run the delivery worker until the outbox is empty (pushed notices, PDFs)."""
    worker = embedded.state.bot_runtime.delivery_worker(worker_id="test")
    total = 0
    while handled := await worker.run_once():
        total += handled
    return total


async def walk_region(user: ChatUser, *names: str) -> None:
    """Tap through the region picker (typing a name to search when the button is not on the page)."""
    for name in names:
        if not any(name in t for r in user.last for t in r.button_texts()):
            await user.say(name)
        await user.tap(name)


async def insured_in_chat(
    user: ChatUser,
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    *,
    product: str = "rice",
    quantity: str = "10",
    ear_tags: list[str] | None = None,
) -> dict[str, Any]:
    """A web chat user who holds a paid policy (enrolled through the API the bot uses); returns the policy."""
    import secrets

    await user.say("/start")
    await user.share_proved_contact("13812345678")
    headers = {**service_headers, "X-Tianbao-Identity": f"webchat:{user.chat_id}"}
    body = {
        "idempotency_key": secrets.token_urlsafe(12),
        "product_code": product,
        "region_code": DONGGUAN_TOWNSHIP,
        "quantity": quantity,
        "disclosure_version": "2026.1",
        "disclosure_read": True,
        "signer": {"role": "insured"},
        "farmer": {
            "insured_type": "farmer",
            "name": "李四",
            "id_number": VALID_ID,
            "phone": "13812345678",
            "bank_name": "农业银行",
            "bank_account": "6228480012345678901",
            "ear_tags": ear_tags or [],
        },
    }
    application = await api.post("/api/bot/applications", headers=headers, json=body)
    assert application.status_code == 200, application.text
    paid = await api.post(
        f"/api/bot/applications/{application.json()['id']}/payments",
        headers=headers,
        json={"provider": "demo"},
    )
    assert paid.status_code == 200, paid.text
    policy: dict[str, Any] = paid.json()["policy"]
    return policy

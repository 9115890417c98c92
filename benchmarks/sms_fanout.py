"""SMS fan-out: N numbers through the real Tencent adapter against the fake Tencent SMS API on loopback.

    python -m benchmarks.sms_fanout [--numbers N] [--rate R] [--scenario bulk|personal|both]
                                    [--senders S] [--batch B] [--workers W [--redis-url URL]]

The fake enforces the provider's overall rate (``R`` numbers/s, one second's worth of burst): a call
beyond it answers ``RequestLimitExceeded``. The adapter paces itself to the same ``R`` with its token
bucket. Two workloads, as the delivery worker will produce them:

* ``bulk``: one text for everybody (a warning): batches of ``B`` numbers (one outbox claim), ``S``
  senders at once sharing one provider; the adapter splits each batch into calls of R/4 numbers.
* ``personal``: a different text per number (a claim notice with its case number): one number per
  batch and per call, ``S`` x 25 batches in flight.

``--workers W`` runs W provider objects, as W delivery workers would, each with S senders, taking from one
queue. With ``--redis-url`` they pace against one bucket in Redis (``RedisNumberPacer``, the deployed
behaviour when ``TIANBAO_REDIS_URL`` is set), and the same run repeats the bulk workload with each worker's
own bucket, the baseline: W workers each at the full rate, which the provider refuses.

Printed: achieved rate as the client saw it and as the fake saw it (first to last accepted text), the
share of the configured rate (aim: >= 95 %; the lower of the client's rate and the fake's sustained
rate, which leaves out the pacer's initial burst of one call's worth), the largest count the fake
accepted in any one-second window (the rate plus the pacer's one-call burst, give or take network jitter),
refused calls, and whether any number was texted twice (counted in the fake). Exits 1 when the aim is
not met. Results: docs/benchmarks.md ("SMS fan-out (provider adapter)").
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version

from redis.asyncio import Redis

from backend.outbox.schemas import Outcome
from bot.channels.sms import RedisNumberPacer, SmsBatch, SmsProviderSettings, SmsResult, TencentSmsProvider
from tests.fakes.tencent_sms import FakeTencentSms, FrequencyLimits

AIM_SHARE = 0.95
SIGN = "田保"
WARNING_TEMPLATE = "100003"  # 【预警】{1}发布{2}，请做好防范。
CLAIM_TEMPLATE = "100002"  # 您的理赔案件{1}状态已更新为{2}，详情请查看{3}


@dataclass
class Figures:
    scenario: str
    numbers: int
    sent: int
    other: dict[str, int]
    calls: int
    refused_calls: int
    client_seconds: float
    provider_seconds: float
    burst: int
    max_in_one_second: int
    texted_twice: int
    rate: float

    @property
    def client_rate(self) -> float:
        return self.sent / self.client_seconds if self.client_seconds else 0.0

    @property
    def provider_rate(self) -> float:
        # The sustained rate: the pacer's bucket lets its capacity go at once at the start; the others went
        # over the time from the first text to the last.
        sustained = self.sent - self.burst
        return sustained / self.provider_seconds if self.provider_seconds else 0.0

    @property
    def share(self) -> float:
        return min(self.client_rate, self.provider_rate) / self.rate

    @property
    def met(self) -> bool:
        return (
            self.share >= AIM_SHARE
            and self.texted_twice == 0
            and self.refused_calls == 0
            and self.sent == self.numbers
        )


def phones(count: int) -> list[str]:
    return [f"+86135{n:08d}" for n in range(count)]


def bulk_batches(numbers: Sequence[str], size: int) -> list[SmsBatch]:
    return [
        SmsBatch.build(
            template_id=WARNING_TEMPLATE,
            sign_name=SIGN,
            params=["赣州市气象台", "暴雨橙色预警"],
            phones=numbers[i : i + size],
            session_context=f"broadcast:1:{i // size}",
        )
        for i in range(0, len(numbers), size)
    ]


def personal_batches(numbers: Sequence[str]) -> list[SmsBatch]:
    return [
        SmsBatch.build(
            template_id=CLAIM_TEMPLATE,
            sign_name=SIGN,
            params=[f"LP{n:08d}", "已受理", f"https://tb.example.cn/c/{n:x}"],
            phones=[phone],
            session_context=f"outbox:{n + 1}",
        )
        for n, phone in enumerate(numbers)
    ]


async def drain(provider: TencentSmsProvider, queue: asyncio.Queue[SmsBatch], out: list[SmsResult]) -> None:
    while True:
        try:
            batch = queue.get_nowait()
        except asyncio.QueueEmpty:
            return
        out.extend(await provider.send(batch))


def max_in_window(times: Sequence[float], window: float = 1.0) -> int:
    ordered = sorted(times)
    return max(
        (bisect.bisect_right(ordered, t + window - 1e-9) - i for i, t in enumerate(ordered)), default=0
    )


def worker_pacer(settings: SmsProviderSettings, redis_url: str, key: str) -> RedisNumberPacer | None:
    if not redis_url:
        return None
    return RedisNumberPacer(
        Redis.from_url(redis_url), settings.rate_per_second, burst=settings.numbers_per_call, key=key
    )


async def run(
    scenario: str,
    count: int,
    rate: float,
    senders: int,
    batch_size: int,
    *,
    workers: int = 1,
    redis_url: str = "",
) -> Figures:
    # Every number is distinct, so the per-number limits never bite; they stay on as in production.
    async with FakeTencentSms(numbers_per_second=rate, frequency=FrequencyLimits()) as fake:
        settings = SmsProviderSettings(**fake.settings_values(rate_per_second=rate))
        key = f"tianbao:bench-sms-pacer:{time.time_ns()}"  # a fresh shared bucket for this run
        providers = [
            TencentSmsProvider(settings, pacer=worker_pacer(settings, redis_url, key)) for _ in range(workers)
        ]
        async with contextlib.AsyncExitStack() as stack:
            for provider in providers:
                await stack.enter_async_context(provider)
            numbers = phones(count)
            batches = bulk_batches(numbers, batch_size) if scenario == "bulk" else personal_batches(numbers)
            queue: asyncio.Queue[SmsBatch] = asyncio.Queue()
            for batch in batches:
                queue.put_nowait(batch)
            tasks = senders if scenario == "bulk" else senders * 25
            results: list[SmsResult] = []
            started = time.monotonic()
            await asyncio.gather(
                *(drain(provider, queue, results) for provider in providers for _ in range(tasks))
            )
            client_seconds = time.monotonic() - started
        sent_at = [sms.at for sms in fake.sent]
        other: dict[str, int] = {}
        for result in results:
            if result.outcome is not Outcome.SENT:
                other[result.code] = other.get(result.code, 0) + 1
        shared = "one Redis bucket" if redis_url else "a bucket each"
        return Figures(
            scenario=scenario if workers == 1 else f"{scenario}, {workers} workers, {shared}",
            numbers=count,
            sent=sum(1 for r in results if r.outcome is Outcome.SENT),
            other=other,
            calls=len(fake.calls),
            refused_calls=sum(1 for call in fake.calls if call.error_code is not None or call.status != 200),
            client_seconds=client_seconds,
            provider_seconds=(max(sent_at) - min(sent_at)) if sent_at else 0.0,
            burst=min(providers[0].numbers_per_call, len(sent_at)),
            max_in_one_second=max_in_window(sent_at),
            texted_twice=len(fake.numbers_texted_twice()),
            rate=rate,
        )


def describe_machine() -> str:
    commit = ""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "-"
    load = os.getloadavg()
    return (
        f"machine:  {platform.processor() or platform.machine()}, nproc {os.cpu_count()}, {platform.system()} "
        f"{platform.release()}\npython:   {platform.python_implementation()} {platform.python_version()}; "
        f"httpx {version('httpx')}, aiohttp {version('aiohttp')}\n"
        f"code:     commit {commit}; load average {load[0]:.2f} at start"
    )


def report(figures: Figures) -> str:
    refused = ", ".join(f"{code} x{n}" for code, n in sorted(figures.other.items())) or "none"
    return "\n".join(
        [
            f"[{figures.scenario}] {figures.numbers} numbers at a configured {figures.rate:.0f}/s, "
            f"{figures.calls} provider calls",
            f"  sent {figures.sent}/{figures.numbers}; not sent: {refused}; refused calls: {figures.refused_calls}",
            f"  client:   {figures.client_seconds:.2f} s, {figures.client_rate:.1f} numbers/s",
            f"  provider: {figures.provider_seconds:.2f} s first to last text, {figures.provider_rate:.1f} numbers/s sustained, "
            f"at most {figures.max_in_one_second} in any 1 s window",
            f"  {figures.share:.1%} of the configured rate (aim >= {AIM_SHARE:.0%}); "
            f"numbers texted twice: {figures.texted_twice}",
            f"  aim {'met' if figures.met else 'NOT met'}",
        ]
    )


async def main_async(args: argparse.Namespace) -> int:
    print(describe_machine())
    scenarios = ("bulk", "personal") if args.scenario == "both" else (args.scenario,)
    all_met = True
    for scenario in scenarios:
        figures = await run(
            scenario,
            args.numbers,
            args.rate,
            args.senders,
            args.batch,
            workers=args.workers,
            redis_url=args.redis_url,
        )
        print(report(figures))
        all_met &= figures.met
    if args.workers > 1 and args.redis_url:
        print("baseline: the same bulk workload, each worker pacing alone at the full rate")
        baseline = await run("bulk", args.numbers, args.rate, args.senders, args.batch, workers=args.workers)
        print(report(baseline))
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0 if all_met else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--numbers", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0, help="provider rate, numbers per second")
    parser.add_argument("--scenario", choices=("bulk", "personal", "both"), default="both")
    parser.add_argument("--senders", type=int, default=4, help="concurrent senders sharing the provider")
    parser.add_argument("--batch", type=int, default=200, help="numbers per batch in the bulk scenario")
    parser.add_argument("--workers", type=int, default=1, help="delivery workers, each its own provider")
    parser.add_argument("--redis-url", default="", help="share the pacer among the workers through Redis")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

"""Polling the configured CAP feeds (``TIANBAO_CAP_FEEDS``) with conditional requests.

A feed URL answers either one CAP document (``<alert>``) or an Atom / RSS feed whose entries link to CAP
documents (Atom ``<link href>``, preferring ``type="application/cap+xml"``; RSS ``<item><link>``) or embed
one in ``<content>`` (as several national feeds do). The feed's ``ETag`` and ``Last-Modified`` are kept
on its ``cap_feed`` row and sent back (``If-None-Match`` / ``If-Modified-Since``): a 304 does nothing
else. An entry already received (its link is a warning's ``source_url``) is not fetched again, nor one
refused before while the feed still lists it; every document goes through ``service.ingest``, so a
message seen twice is processed once whatever its route.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from urllib.parse import urljoin
from xml.etree.ElementTree import Element, tostring

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.alerts.warnings import cap, service
from backend.alerts.warnings.errors import WarningError
from backend.alerts.warnings.models import CapFeed, CapWarning
from backend.db import utcnow
from backend.settings import Settings

log = logging.getLogger(__name__)
ATOM = "{http://www.w3.org/2005/Atom}"
CAP = "{" + cap.NS + "}"
MAX_REFUSED_KEPT = 500
_SPLIT = re.compile(r"[\s,]+")


@dataclass
class FeedReport:
    url: str
    status: int | None = None
    received: int = 0
    duplicates: int = 0
    refused: list[str] = field(default_factory=list)
    error: str | None = None


def configured_feeds(settings: Settings) -> list[str]:
    return [url for url in _SPLIT.split(settings.cap_feeds.strip()) if url]


async def poll_feeds(
    session: AsyncSession, settings: Settings, *, client: httpx.AsyncClient | None = None
) -> list[FeedReport]:
    """The scheduler's job: each configured feed once (idempotent: what was received is not again)."""
    urls = configured_feeds(settings)
    if not urls:
        return []
    own = client is None
    client = client or httpx.AsyncClient(timeout=settings.cap_feed_timeout_seconds, follow_redirects=True)
    try:
        return [await poll_feed(session, settings, url=url, client=client) for url in urls]
    finally:
        if own:
            await client.aclose()


async def _feed_row(session: AsyncSession, url: str) -> CapFeed:
    row = (await session.exec(select(CapFeed).where(CapFeed.url == url))).first()
    if row is None:
        row = CapFeed(url=url)
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row


async def poll_feed(
    session: AsyncSession, settings: Settings, *, url: str, client: httpx.AsyncClient
) -> FeedReport:
    feed = await _feed_row(session, url)
    report = FeedReport(url=url)
    headers = {"Accept": "application/cap+xml, application/atom+xml, application/rss+xml, application/xml"}
    if feed.etag:
        headers["If-None-Match"] = feed.etag
    if feed.last_modified:
        headers["If-Modified-Since"] = feed.last_modified
    try:
        answer = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        report.error = f"{type(exc).__name__}: {exc}"[:1000]
        return await _done(session, feed, report)
    report.status = answer.status_code
    if answer.status_code == 304:
        return await _done(session, feed, report)
    if answer.status_code != 200:
        report.error = f"HTTP {answer.status_code}"
        return await _done(session, feed, report)
    await _read(session, settings, url, list(feed.refused_links), answer.content, report, client)
    feed = await _feed_row(session, url)  # ingest commits (and a refusal rolls back): read the row again
    feed.etag = answer.headers.get("ETag")
    feed.last_modified = answer.headers.get("Last-Modified")
    return await _done(session, feed, report)


async def _done(session: AsyncSession, feed: CapFeed, report: FeedReport) -> FeedReport:
    feed.checked_at = utcnow()
    feed.last_status = report.status
    feed.last_error = report.error or ("; ".join(report.refused)[:1000] if report.refused else None)
    session.add(feed)
    await session.commit()
    return report


def _tree(data: bytes) -> Element | None:
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError):
        return None


async def _read(
    session: AsyncSession,
    settings: Settings,
    url: str,
    refused_before: list[str],
    data: bytes,
    report: FeedReport,
    client: httpx.AsyncClient,
) -> None:
    """Plain values only (the url, the refused links): a refusal rolls the session back, which expires
    every row object it holds."""
    root = _tree(data)
    if root is None or root.tag == CAP + "alert":  # one document (an unsafe one is refused by ingest)
        await _ingest(session, settings, url, data, url, report)
        return
    for link, embedded in _entries(root, url):
        if embedded is not None:
            await _ingest(session, settings, url, embedded, link, report)
            continue
        if link in refused_before or await _received(session, link):
            continue
        try:
            answer = await client.get(link, headers={"Accept": "application/cap+xml, application/xml"})
        except httpx.HTTPError as exc:
            report.refused.append(f"{link}: {type(exc).__name__}")
            continue
        if answer.status_code != 200:
            report.refused.append(f"{link}: HTTP {answer.status_code}")
            continue
        await _ingest(session, settings, url, answer.content, link, report)


def _entries(root: Element, base: str) -> list[tuple[str, bytes | None]]:
    """(link, embedded CAP document or None) of every entry, in the feed's order."""
    found: list[tuple[str, bytes | None]] = []
    entries = root.findall(ATOM + "entry") or root.findall("./channel/item") or root.findall("item")
    for n, entry in enumerate(entries):
        embedded = entry.find(f".//{CAP}alert")
        link = _entry_link(entry)
        target = urljoin(base, link) if link else f"{base}#entry-{n}"
        found.append((target, tostring(embedded) if embedded is not None else None))
    return [(link, doc) for link, doc in found if doc is not None or not link.startswith(f"{base}#entry-")]


def _entry_link(entry: Element) -> str | None:
    links = entry.findall(ATOM + "link")
    for item in links:
        if "cap" in (item.get("type") or "") and item.get("href"):
            return item.get("href")
    for item in links:
        if item.get("rel", "alternate") == "alternate" and item.get("href"):
            return item.get("href")
    rss = entry.find("link")
    if rss is not None and (rss.text or "").strip():
        return (rss.text or "").strip()
    return None


async def _received(session: AsyncSession, link: str) -> bool:
    query = select(CapWarning.id).where(col(CapWarning.source_url) == link).limit(1)
    return (await session.exec(query)).first() is not None


async def _ingest(
    session: AsyncSession, settings: Settings, url: str, data: bytes, link: str, report: FeedReport
) -> None:
    try:
        result = await service.ingest(session, settings, data=data, source="feed", source_url=link[:1000])
    except WarningError as exc:
        await session.rollback()
        report.refused.append(f"{link}: {exc.code} {exc.detail.get('reason', '')}".strip())
        row = await _feed_row(session, url)
        if link != url and link not in row.refused_links:
            row.refused_links = [*row.refused_links, link][-MAX_REFUSED_KEPT:]
            session.add(row)
            await session.commit()
        log.warning("CAP feed %s: %s refused: %s", url, link, exc.detail)
        return
    if result.duplicate:
        report.duplicates += 1
    else:
        report.received += 1

"""Build ``messages/fonts/NotoSansSC-Tianbao.ttf``: the CJK font embedded in Tianbao's PDF documents.

Source: Noto Sans CJK SC Regular, face index 2 of the Debian ``fonts-noto-cjk`` collection
``/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc`` (SIL Open Font License 1.1).

Kept: ASCII and Latin-1, general punctuation, currency and letter-like symbols, arrows, maths operators,
enclosed numbers (①…), box drawing and geometric shapes, CJK symbols and punctuation, full-width forms,
every character of GBK (21,791 outside its private use area: all 20,902 GBK hanzi and GBK's symbols), and
every character used in ``backend/data/regions/*.csv`` (place names outside GBK exist). The source has no
ballot boxes, so ☐ ☑ ☒ (U+2610-2612) are composed from its own □ and ✓ / ×. Layout features and hinting
are dropped (fpdf2 lays text out glyph by glyph); the .notdef outline is kept so a missing character
shows as a box, not as nothing. The CFF outlines are then converted to TrueType outlines (see
``to_truetype`` for why), and the family is renamed "Noto Sans SC Tianbao" (a modified version).

Run from the repository root:

    .venv/bin/python scripts/make_font_subset.py [--source PATH] [--face 2] [--output PATH]

The output is deterministic for the same source font and the same region files.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from fontTools import subset
from fontTools.pens.boundsPen import BoundsPen
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.t2CharStringPen import T2CharStringPen
from fontTools.pens.transformPen import TransformPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont, newTable

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
DEFAULT_FACE = 2  # 0 JP, 1 KR, 2 SC, 3 TC, 4 HK in the Debian collection; checked below by name
DEFAULT_OUTPUT = ROOT / "messages" / "fonts" / "NotoSansSC-Tianbao.ttf"
REGIONS_DIR = ROOT / "backend" / "data" / "regions"
FAMILY = "Noto Sans SC Tianbao"
POSTSCRIPT_NAME = "NotoSansSC-Tianbao"

RANGES: tuple[tuple[int, int], ...] = (
    (0x0020, 0x007E),  # ASCII
    (0x00A0, 0x00FF),  # Latin-1 supplement: ¥ × ÷ ° · …
    (0x2000, 0x206F),  # general punctuation: — ‘ ’ “ ” … ‰ ※
    (0x20A0, 0x20CF),  # currency symbols
    (0x2100, 0x214F),  # letter-like symbols: ℃ № ™
    (0x2150, 0x218F),  # number forms: Ⅰ Ⅱ Ⅲ
    (0x2190, 0x21FF),  # arrows: → ←
    (0x2200, 0x22FF),  # mathematical operators: ≤ ≥ ≠ ±
    (0x2460, 0x24FF),  # enclosed alphanumerics: ① ⑳ ⑴ ⒈
    (0x2500, 0x257F),  # box drawing
    (0x25A0, 0x25FF),  # geometric shapes: ■ □ ▲ ● ○ ◆
    (0x2600, 0x26FF),  # miscellaneous symbols: ☐ ☑ ☒ ★ ☆
    (0x2713, 0x2717),  # check marks ✓ ✔ ✕ ✖ ✗
    (0x3000, 0x303F),  # CJK symbols and punctuation: 、 。 「 」 【 】 〔 〕
    (0x3200, 0x32FF),  # enclosed CJK letters: ㈠ ㊣
    (0x3300, 0x33FF),  # CJK compatibility: ㎡ ㎏
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFFEF),  # half-width and full-width forms: ０ Ａ ， ． ￥
)


def gbk_characters() -> set[str]:
    """Every character GBK can encode (two-byte area: lead 0x81-0xFE, trail 0x40-0xFE except 0x7F)."""
    chars: set[str] = set()
    for lead in range(0x81, 0xFF):
        for trail in range(0x40, 0xFF):
            if trail == 0x7F:
                continue
            try:
                ch = bytes((lead, trail)).decode("gbk")
            except UnicodeDecodeError:
                continue
            if len(ch) == 1 and not 0xE000 <= ord(ch) <= 0xF8FF:  # no private use area
                chars.add(ch)
    return chars


def region_characters(regions_dir: Path = REGIONS_DIR) -> set[str]:
    chars: set[str] = set()
    for path in sorted(regions_dir.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle):
                for cell in row:
                    chars.update(cell)
    return chars


def wanted_codepoints() -> set[int]:
    points = {cp for start, end in RANGES for cp in range(start, end + 1)}
    points |= {ord(ch) for ch in gbk_characters() | region_characters()}
    return {cp for cp in points if cp >= 0x20}


# Noto Sans CJK has no ballot boxes; they are composed from its own □ (U+25A1) and a mark scaled into it.
BALLOT_BOXES: dict[int, int | None] = {
    0x2610: None,  # ☐ ballot box: the square alone
    0x2611: 0x2713,  # ☑ ballot box with check: □ + ✓
    0x2612: 0x00D7,  # ☒ ballot box with X: □ + ×
}
SQUARE = 0x25A1


def add_ballot_boxes(font: TTFont) -> None:
    """Add ☐ ☑ ☒ as new CID glyphs drawn from the square and the mark (a modified version, as OFL allows)."""
    cmap = font.getBestCmap()
    glyph_set = font.getGlyphSet()
    top = font["CFF "].cff.topDictIndex[0]
    charstrings = top.CharStrings
    square = cmap[SQUARE]
    fd_index = charstrings.getItemAndSelector(square)[1] or 0
    private = top.FDArray[fd_index].Private
    # The square's hole is 137..863 x 17..743 in Noto Sans CJK; marks go inside it with a margin.
    inner = (205, 85, 795, 675)
    used = {int(name[3:]) for name in font.getGlyphOrder() if name.startswith("cid")}
    free_cids = (cid for cid in range(1, 65535) if cid not in used)
    order = list(font.getGlyphOrder())
    for codepoint, mark in BALLOT_BOXES.items():
        if codepoint in cmap:
            continue
        pen = T2CharStringPen(None, glyph_set)  # width None: the private dict's defaultWidthX (1000)
        glyph_set[square].draw(pen)
        if mark is not None:
            mark_name = cmap[mark]
            bounds_pen = BoundsPen(glyph_set)
            glyph_set[mark_name].draw(bounds_pen)
            assert bounds_pen.bounds is not None
            x0, y0, x1, y1 = bounds_pen.bounds
            scale = min((inner[2] - inner[0]) / (x1 - x0), (inner[3] - inner[1]) / (y1 - y0))
            dx = (inner[0] + inner[2]) / 2 - scale * (x0 + x1) / 2
            dy = (inner[1] + inner[3]) / 2 - scale * (y0 + y1) / 2
            glyph_set[mark_name].draw(TransformPen(pen, (scale, 0, 0, scale, dx, dy)))
        charstring = pen.getCharString(private=private, globalSubrs=font["CFF "].cff.GlobalSubrs)
        name = f"cid{next(free_cids):05d}"
        charstrings.charStrings[name] = len(charstrings.charStringsIndex)
        charstrings.charStringsIndex.append(charstring)
        top.FDSelect.append(fd_index)
        top.charset.append(name)
        order.append(name)
        font["hmtx"][name] = font["hmtx"][square]
        for table in font["cmap"].tables:
            if table.isUnicode():
                table.cmap[codepoint] = name
    font.setGlyphOrder(order)
    font["maxp"].numGlyphs = len(order)


def rename(font: TTFont) -> None:
    """A modified version gets its own name (OFL: no Reserved Font Name on a modified version)."""
    table = font["name"]
    for record in list(table.names):
        if record.nameID in (1, 4, 16):
            table.setName(FAMILY, record.nameID, record.platformID, record.platEncID, record.langID)
        elif record.nameID == 3:
            value = f"{record.toUnicode()};{POSTSCRIPT_NAME}"
            table.setName(value, 3, record.platformID, record.platEncID, record.langID)
        elif record.nameID == 6:
            table.setName(POSTSCRIPT_NAME, 6, record.platformID, record.platEncID, record.langID)


def to_truetype(font: TTFont, max_error: float = 1.0) -> None:
    """Replace the CFF outlines by TrueType (quadratic) outlines, in place.

    Why: fpdf2 embeds a CID-keyed CFF font as CIDFontType0 with an embedded encoding CMap (code -> CID),
    which pypdf does not read: it extracts such text as NUL-interleaved single bytes and garbles every
    character past the 255th distinct glyph of a document. A TrueType font is embedded as CIDFontType2
    with Identity-H and a CIDToGIDMap, which every reader (pypdf, poppler, pdf.js, PDFium) extracts.
    """
    glyph_order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyf = newTable("glyf")
    glyf.glyphOrder = glyph_order
    glyf.glyphs = {}
    for name in glyph_order:
        pen = TTGlyphPen(glyph_set)
        # CFF contours run counter-clockwise, TrueType ones clockwise: reverse while converting.
        glyph_set[name].draw(Cu2QuPen(pen, max_error, reverse_direction=True))
        glyf[name] = pen.glyph()
    del font["CFF "]
    for tag in ("VORG", "vhea", "vmtx", "BASE"):
        if tag in font:
            del font[tag]
    font["glyf"] = glyf
    font["loca"] = newTable("loca")
    maxp = newTable("maxp")
    maxp.tableVersion = 0x00010000
    maxp.numGlyphs = len(glyph_order)
    for attribute in (
        "maxPoints",
        "maxContours",
        "maxCompositePoints",
        "maxCompositeContours",
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
        "maxComponentDepth",
    ):
        setattr(maxp, attribute, 0)
    maxp.maxZones = 1
    font["maxp"] = maxp
    font["head"].glyphDataFormat = 0
    post = font["post"]
    post.formatType = 3.0  # no glyph names stored: 22,000 "cidNNNNN" names would add 250 kB
    font.sfntVersion = "\x00\x01\x00\x00"


def build(source: Path, face: int, output: Path) -> dict[str, int]:
    # recalcTimestamp=False keeps the source's head.modified, so the output is byte-for-byte reproducible.
    font = TTFont(str(source), fontNumber=face, lazy=False, recalcTimestamp=False)
    family = font["name"].getDebugName(1) or ""
    if "SC" not in family.split():
        raise SystemExit(f"face {face} of {source} is {family!r}, not the Simplified Chinese face")
    cmap = font.getBestCmap()
    wanted = wanted_codepoints()
    present = sorted(cp for cp in wanted if cp in cmap)

    options = subset.Options()
    options.layout_features = []
    options.hinting = False
    options.notdef_outline = True
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.drop_tables += ["BASE", "VORG", "vhea", "vmtx"]
    subsetter = subset.Subsetter(options=options)
    subsetter.populate(unicodes=present)
    subsetter.subset(font)
    add_ballot_boxes(font)
    rename(font)
    to_truetype(font)
    output.parent.mkdir(parents=True, exist_ok=True)
    font.save(str(output))
    return {
        "wanted": len(wanted),
        "kept": len(present),
        "missing": len(wanted) - len(present),
        "glyphs": len(font.getGlyphOrder()),
        "bytes": output.stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--face", type=int, default=DEFAULT_FACE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    stats = build(args.source, args.face, args.output)
    print(f"{args.output}: " + ", ".join(f"{key} {value}" for key, value in stats.items()))


if __name__ == "__main__":
    main()

"""Read profile files into a :class:`ParsedProfile`: the Markdown profile format and the
Monitor's legacy plain-text pages. Nothing here touches the database; ``import_profile`` in
``operations.py`` applies the result.

The Markdown profile format (``export_profile`` writes exactly this)::

    ---
    country: ML
    topic: Cluster Munition Ban Policy
    language: en
    last_updated: 2011-08-16
    reviewed: 2012-01-05
    ---

    ## Commitment to the Convention on Cluster Munitions {#commitment}

    Paragraph with a reference.[^1]

    [^1]: The footnote text.

    ### Convention on Cluster Munitions status {#status .field}

    State Party

``country`` and ``topic`` are required (or given as options), ``language`` defaults to "en", the
dates are optional. ``country_name`` is only read for a code outside the ISO list (user-assigned
codes such as the demo's "XF"), so that the import can create that country.

``## `` starts a level-2 section and ``### `` a level-3 one; a trailing ``{#anchor}`` fixes the
anchor and ``.field`` makes the section a summary-box field. Everything up to the next such
heading is the section's Markdown body, footnote definitions included.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pycountry

from desk.core.text import slugify
from desk.profiles.models import SectionKind
from desk.profiles.rendering import footnote_labels

#: Heading of the section made from text that comes before the first heading.
INTRODUCTION = "Introduction"
#: The lengths of the columns a parsed value ends up in.
MAX_HEADING_LENGTH = 300
MAX_ANCHOR_LENGTH = 200
MAX_TOPIC_LENGTH = 200
MAX_COUNTRY_NAME_LENGTH = 120

FRONT_MATTER_KEYS = ("country", "country_name", "topic", "language", "last_updated", "reviewed")
MARKDOWN_SUFFIXES = {".md", ".markdown"}


class ProfileFileError(ValueError):
    """A profile file that cannot be read; carries the 1-based line number when there is one."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


@dataclass
class ParsedSection:
    heading: str
    #: Markdown, footnote definitions included; see ``normalise_body``.
    body: str
    anchor: str
    level: int = 2
    kind: SectionKind = SectionKind.TEXT


@dataclass
class ParsedProfile:
    #: ISO 3166-1 alpha-2, upper case.
    country_code: str
    topic: str
    #: Only needed for a code outside the ISO list (the demo's "XF"), to create the country.
    country_name: str | None = None
    language: str = "en"
    last_updated_on: date | None = None
    reviewed_on: date | None = None
    sections: list[ParsedSection] = field(default_factory=list)
    #: Things a person should look at; the import goes ahead regardless.
    warnings: list[str] = field(default_factory=list)


def normalise_body(body: str) -> str:
    """A body as it is stored and compared: LF line ends, no trailing spaces, no outer blank lines.

    Import compares bodies in this form, so a body that differs only in such whitespace is not a
    change.
    """
    lines = [line.rstrip() for line in _split_lines(body)]
    return "\n".join(lines).strip("\n")


def read_profile_file(
    path: Path,
    *,
    country: str | None = None,
    topic: str | None = None,
    language: str | None = None,
) -> ParsedProfile:
    """Read and parse a profile file, picking the format.

    A file that starts with ``---`` (front matter) or is named ``*.md`` is Markdown; anything
    else is a legacy plain-text page. UTF-8 is expected (with or without BOM); a file that is not
    UTF-8 is read as Windows-1252, with a warning. The options override what the file says.
    """
    data = path.read_bytes()
    warnings: list[str] = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
        warnings.append("the file is not UTF-8; it was read as Windows-1252")
    if path.suffix.lower() in MARKDOWN_SUFFIXES or is_markdown_profile(text):
        parsed = parse_markdown(text, country=country, topic=topic, language=language)
    else:
        parsed = parse_legacy_text(text, country=country, topic=topic, language=language)
    parsed.warnings[:0] = warnings
    return parsed


def is_markdown_profile(text: str) -> bool:
    """Does the text open with a front matter fence?"""
    for line in _split_lines(text.lstrip("\ufeff")):
        if line.strip():
            return line.strip() == "---"
    return False


# Markdown profile files


_SECTION_HEADING = re.compile(r"^(#{1,3})(?:[ \t]+(.*))?$")
_ATTRIBUTES = re.compile(r"^(.*?)[ \t]*\{([^{}]*)\}$")
_ANCHOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_FENCE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")


@dataclass
class _Heading:
    text: str
    level: int
    kind: SectionKind
    anchor: str | None
    line: int
    body: list[str] = field(default_factory=list)


def parse_markdown(
    text: str,
    *,
    country: str | None = None,
    topic: str | None = None,
    language: str | None = None,
) -> ParsedProfile:
    """Parse a Markdown profile file (the format in this module's docstring).

    The front matter is optional when ``country`` and ``topic`` are given. ``# Title`` lines
    before the first section are ignored; text before the first section becomes a section
    headed "Introduction", with a warning. Headings inside fenced code blocks, and ``####`` or
    deeper headings, belong to the body. CRLF line ends, a BOM and trailing spaces are accepted.

    Raises ProfileFileError for front matter or a heading that cannot be read (naming its
    line), and when neither the file nor the options give the country or the topic.
    """
    lines = _split_lines(text.lstrip("\ufeff"))
    warnings: list[str] = []
    meta, first_body_line = _front_matter(lines, warnings)

    preamble: list[str] = []
    preamble_line: int | None = None
    headings: list[_Heading] = []
    in_fence: str | None = None
    for index in range(first_body_line, len(lines)):
        number = index + 1
        line = lines[index].rstrip()
        fence = _FENCE.match(line)
        if fence:
            marker = fence.group(1)[0]
            if in_fence is None:
                in_fence = marker
            elif in_fence == marker:
                in_fence = None
        heading = None if in_fence or fence else _SECTION_HEADING.match(line)
        if heading and len(heading.group(1)) == 1:
            if not headings:
                continue  # the page title: the topic comes from the front matter
            heading = None
        if heading:
            headings.append(_markdown_heading(heading, number, warnings))
        elif headings:
            headings[-1].body.append(line)
        else:
            if line.strip() and preamble_line is None:
                preamble_line = number
            preamble.append(line)

    if preamble_line is not None:
        warnings.append(
            f"line {preamble_line}: text before the first heading is kept as a section "
            f"headed {INTRODUCTION!r}"
        )
        headings.insert(
            0, _Heading(INTRODUCTION, 2, SectionKind.TEXT, None, preamble_line, preamble)
        )

    sections = _markdown_sections(headings)
    warnings.extend(_markdown_footnote_warnings(sections))

    country_code = _country_code(country, None) if country else meta.get("country")
    if not country_code:
        raise ProfileFileError(
            "the front matter names no country: add 'country: CODE' or pass --country"
        )
    topic = (topic or "").strip() or meta.get("topic")
    if not topic:
        raise ProfileFileError("the front matter names no topic: add 'topic: …' or pass --topic")
    return ParsedProfile(
        country_code=country_code,
        country_name=meta.get("country_name"),
        topic=_check_topic(topic, None),
        language=_check_language(language, None) if language else meta.get("language", "en"),
        last_updated_on=meta.get("last_updated"),
        reviewed_on=meta.get("reviewed"),
        sections=sections,
        warnings=warnings,
    )


def _front_matter(lines: list[str], warnings: list[str]) -> tuple[dict, int]:
    """The front matter's values and the index of the first line after it."""
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None or lines[start].strip() != "---":
        return {}, 0
    meta: dict = {}
    seen: dict[str, int] = {}
    for index in range(start + 1, len(lines)):
        number = index + 1
        line = lines[index].strip()
        if line == "---":
            return meta, index + 1
        if not line or line.startswith("#"):
            continue
        key, colon, value = line.partition(":")
        key = key.strip().lower().replace("-", "_")
        if not colon or not key:
            raise ProfileFileError(f"front matter lines read 'key: value', not {line!r}", number)
        if key in seen:
            raise ProfileFileError(f"{key!r} is given twice (first on line {seen[key]})", number)
        seen[key] = number
        value = _unquote(value.strip())
        if key not in FRONT_MATTER_KEYS:
            warnings.append(
                f"line {number}: unknown front matter key {key!r} ignored "
                f"(known: {', '.join(FRONT_MATTER_KEYS)})"
            )
            continue
        if key in ("last_updated", "reviewed"):
            meta[key] = _iso_date(key, value, number) if value else None
        elif not value:
            raise ProfileFileError(f"{key!r} has no value", number)
        elif key == "country":
            meta[key] = _country_code(value, number)
        elif key == "language":
            meta[key] = _check_language(value, number)
        elif key == "country_name":
            meta[key] = _check_length(value, MAX_COUNTRY_NAME_LENGTH, "the country name", number)
        else:
            meta[key] = _check_topic(value, number)
    raise ProfileFileError(
        "the front matter opened here is never closed by a '---' line", start + 1
    )


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1].strip()
    return value


def _iso_date(key: str, value: str, line: int) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ProfileFileError(
            f"{key!r} must be a date like 2011-08-16, not {value!r}", line
        ) from None


def _country_code(value: str, line: int | None) -> str:
    """A well-formed code; whether the country exists is for the import to say."""
    code = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise ProfileFileError(
            f"{value.strip()!r} is not an ISO 3166-1 alpha-2 country code (e.g. ML)", line
        )
    return code


def _check_language(value: str, line: int | None) -> str:
    value = value.strip()
    if len(value) > 8 or not _LANGUAGE.match(value):
        raise ProfileFileError(f"{value!r} is not a language tag like 'en' or 'fr'", line)
    return value


def _check_topic(value: str, line: int | None) -> str:
    return _check_length(value, MAX_TOPIC_LENGTH, "the topic", line)


def _check_length(value: str, limit: int, what: str, line: int | None) -> str:
    value = " ".join(value.split())
    if len(value) > limit:
        raise ProfileFileError(f"{what} is longer than {limit} characters", line)
    return value


def _markdown_heading(match: re.Match[str], line: int, warnings: list[str]) -> _Heading:
    level = len(match.group(1))
    text = (match.group(2) or "").strip()
    kind = SectionKind.TEXT
    anchor: str | None = None
    attributes = _ATTRIBUTES.match(text)
    tokens = attributes.group(2).split() if attributes else []
    if attributes and tokens and all(token[0] in "#." for token in tokens):
        text = attributes.group(1).strip()
        for token in tokens:
            if token == ".field":
                kind = SectionKind.FIELD
            elif token.startswith("#"):
                anchor = token[1:]
                if not _ANCHOR.match(anchor) or len(anchor) > MAX_ANCHOR_LENGTH:
                    raise ProfileFileError(
                        f"{token!r} is not an anchor (letters, digits, '-' and '_')", line
                    )
            else:
                warnings.append(f"line {line}: unknown heading attribute {token!r} ignored")
    if not text:
        raise ProfileFileError("a section heading has no text", line)
    if len(text) > MAX_HEADING_LENGTH:
        raise ProfileFileError(f"the heading is longer than {MAX_HEADING_LENGTH} characters", line)
    return _Heading(text, level, kind, anchor, line)


def _markdown_sections(headings: list[_Heading]) -> list[ParsedSection]:
    explicit: dict[str, int] = {}
    for heading in headings:
        if heading.anchor is None:
            continue
        if heading.anchor in explicit:
            raise ProfileFileError(
                f"anchor #{heading.anchor} is already used on line {explicit[heading.anchor]}",
                heading.line,
            )
        explicit[heading.anchor] = heading.line
    taken = set(explicit)
    sections = []
    for heading in headings:
        anchor = heading.anchor or _unique_anchor(heading.text, taken)
        taken.add(anchor)
        sections.append(
            ParsedSection(
                heading=heading.text,
                body=normalise_body("\n".join(heading.body)),
                anchor=anchor,
                level=heading.level,
                kind=heading.kind,
            )
        )
    return sections


def _markdown_footnote_warnings(sections: list[ParsedSection]) -> list[str]:
    warnings = []
    for section in sections:
        referenced, defined = footnote_labels(section.body)
        warnings.extend(
            f"reference [^{label}] in section {section.heading!r} has no footnote text"
            for label in referenced
            if label not in defined
        )
        warnings.extend(
            f"footnote [^{label}] in section {section.heading!r} is never referenced"
            for label in defined
            if label not in referenced
        )
    return warnings


def _unique_anchor(heading: str, taken: set[str]) -> str:
    base = slugify(heading, max_length=MAX_ANCHOR_LENGTH - 4)
    anchor, suffix = base, 2
    while anchor in taken:
        anchor, suffix = f"{base}-{suffix}", suffix + 1
    return anchor


# Legacy plain-text pages of the Monitor's old site


_LAST_UPDATED = re.compile(r"^Last Updated\s*:\s*(.*)$", re.IGNORECASE)
_LEGACY_REFERENCE = re.compile(r"\[(\d+)\]")
_LEGACY_FOOTNOTE = re.compile(r"^\[(\d+)\]\s*(.*)$")
_CHROME_PREFIXES = (
    "email notification",
    "send us your feedback",
    "send the monitor your feedback",
)
#: A navigation link of the old site's header: a short line the export ended with a no-break space.
_NAV_LINK_LENGTH = 60
_HEADING_MAX_LENGTH = 100
_HEADING_MAX_WORDS = 15
_END_PUNCTUATION = ".:;,!?…"
_CLOSERS = "\"')]”’»"
_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
#: Characters that would make Markdown of a plain-text paragraph.
_MARKDOWN_INLINE = re.compile(r"([\\`*_])|&(?=#?\w+;)")
_MARKDOWN_LINE_START = re.compile(r"^(?:(\d{1,9})([.)])(?=\s|$)|([#>]|[-+=](?=\s|$)))")


@dataclass
class _Paragraph:
    lines: list[str]
    #: Blank lines before it: two or more end the summary box.
    gap: int
    line: int

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class _LegacySection:
    heading: str
    level: int = 2
    kind: SectionKind = SectionKind.TEXT
    paragraphs: list[str] = field(default_factory=list)


def parse_legacy_text(
    text: str,
    *,
    country: str | None = None,
    topic: str | None = None,
    language: str | None = None,
) -> ParsedProfile:
    """Parse a profile page saved as plain text from the Monitor's old website.

    The page reads, top to bottom:

    1. Site chrome — navigation links (short lines ending in a no-break space), "Email
       Notification…", the feedback invitation — everything up to "Last Updated: 16 August
       2011", which gives the date. Dropped. Other text found there is dropped with a warning.
       Without a "Last Updated" line, only the chrome at the top is dropped and the date is
       left unset, with a warning.
    2. The title line, the topic ("Cluster Munition Ban Policy"); ``topic`` overrides it.
    3. The first heading, then the summary box: label/value paragraph pairs up to the first
       double blank line, each pair a level-3 FIELD section. The box is only recognised when
       there is an even number of paragraphs before that double blank line, every label looks
       like a heading, and running text follows.
    4. Running text: paragraphs and headings, each heading starting a level-2 TEXT section.
    5. The footnotes: from the first paragraph that starts with ``[n]`` to the end. A paragraph
       there without its own ``[n]`` continues the note before it.

    A paragraph is a heading when it is a single line of at most 100 characters and 15 words,
    starts with a capital letter or a digit, does not end with sentence punctuation (``.:;,!?…``,
    also before a closing quote or bracket), holds no footnote reference ``[n]``, and is not the
    last paragraph of the running text.

    References ``[n]`` become ``[^n]``; the text of note n becomes a definition ``[^n]: text``
    at the end of every section that refers to it (labels belong to their section). A note that
    is never referred to is kept in the section of the note before it, with a warning; a
    reference without a note stays as ``[^n]`` (shown as a plain marker), with a warning.

    The country is ``country`` or else the country whose name the text mentions most (names
    from the ISO list). No-break and other odd spaces become plain spaces; typographic quotes are
    kept. Plain-text characters that Markdown would read as markup are escaped.

    Raises ProfileFileError when the country or the topic cannot be found.
    """
    warnings: list[str] = []
    raw_lines = _split_lines(text.lstrip("\ufeff"))
    lines = [_clean_line(line) for line in raw_lines]

    last_updated_on: date | None = None
    stamp = next(
        ((i, match) for i, line in enumerate(lines) if (match := _LAST_UPDATED.match(line))),
        None,
    )
    if stamp is None:
        warnings.append("no 'Last Updated:' line: the date is left unset")
        start = -1
        while start + 1 < len(lines) and (
            not lines[start + 1] or _is_chrome(raw_lines[start + 1], lines[start + 1])
        ):
            start += 1
    else:
        start, date_text = stamp[0], stamp[1].group(1)
        last_updated_on = _legacy_date(date_text)
        if last_updated_on is None:
            warnings.append(f"line {start + 1}: {date_text!r} is not a date; it is left unset")
    dropped = [
        i + 1 for i in range(max(start, 0)) if lines[i] and not _is_chrome(raw_lines[i], lines[i])
    ]
    if dropped:
        warnings.append(
            f"line {dropped[0]}: {len(dropped)} line(s) of text before the profile were dropped"
        )

    paragraphs = _paragraphs(lines, start + 1)
    has_title = bool(paragraphs) and _looks_like_heading(paragraphs[0])
    title = paragraphs.pop(0).text if has_title else None
    topic = (topic or "").strip() or title
    if not topic:
        raise ProfileFileError("no title line after 'Last Updated:': pass --topic")

    footnote_start = next(
        (i for i, p in enumerate(paragraphs) if _LEGACY_FOOTNOTE.match(p.lines[0])),
        len(paragraphs),
    )
    notes = _legacy_notes(paragraphs[footnote_start:], warnings)
    sections = _legacy_sections(paragraphs[:footnote_start], warnings)

    if country:
        country_code = _country_code(country, None)
    else:
        found = infer_country("\n".join(lines[start + 1 :]))
        if found is None:
            raise ProfileFileError(
                "the text names no country that could be recognised: pass --country CODE"
            )
        country_code = found
    return ParsedProfile(
        country_code=country_code,
        topic=_check_topic(topic, None),
        language=_check_language(language, None) if language else "en",
        last_updated_on=last_updated_on,
        sections=_attach_notes(sections, notes, warnings),
        warnings=warnings,
    )


def _clean_line(line: str) -> str:
    """One line with every kind of space made a plain one, runs collapsed, ends trimmed."""
    chars = []
    for char in line:
        if char in "\u200b\u200c\u200d\u2060\ufeff\u00ad":
            continue
        if char == "\t" or unicodedata.category(char) == "Zs":
            char = " "
        chars.append(char)
    return " ".join("".join(chars).split())


def _is_chrome(raw: str, line: str) -> bool:
    if not any(char.isalnum() for char in line):
        return True
    if raw.rstrip(" \t").endswith("\u00a0") and len(line) <= _NAV_LINK_LENGTH:
        return True
    return line.casefold().startswith(_CHROME_PREFIXES)


def _legacy_date(text: str) -> date | None:
    text = text.strip().rstrip(".")
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    day_first = re.fullmatch(r"(\d{1,2})\s+([A-Za-z]+)\.?,?\s+(\d{4})", text)
    month_first = re.fullmatch(r"([A-Za-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})", text)
    if day_first:
        day, month, year = day_first.groups()
    elif month_first:
        month, day, year = month_first.groups()
    else:
        return None
    try:
        return date(int(year), _MONTHS[month.lower()], int(day))
    except (KeyError, ValueError):
        return None


def _paragraphs(lines: list[str], start: int) -> list[_Paragraph]:
    paragraphs: list[_Paragraph] = []
    gap = 0
    for index in range(start, len(lines)):
        line = lines[index]
        if not line:
            gap += 1
        elif gap or not paragraphs:
            paragraphs.append(_Paragraph([line], gap, index + 1))
            gap = 0
        else:
            paragraphs[-1].lines.append(line)
    return paragraphs


def _looks_like_heading(paragraph: _Paragraph) -> bool:
    if len(paragraph.lines) != 1:
        return False
    line = paragraph.lines[0]
    if len(line) > _HEADING_MAX_LENGTH or len(line.split()) > _HEADING_MAX_WORDS:
        return False
    if not (line[0].isupper() or line[0].isdigit()) or _LEGACY_REFERENCE.search(line):
        return False
    stripped = line.rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] not in _END_PUNCTUATION


def _legacy_sections(paragraphs: list[_Paragraph], warnings: list[str]) -> list[_LegacySection]:
    if not paragraphs:
        return []
    if _looks_like_heading(paragraphs[0]) and len(paragraphs) > 1:
        first = _LegacySection(paragraphs[0].text)
        rest = paragraphs[1:]
    else:
        warnings.append(
            f"line {paragraphs[0].line}: text before the first heading is kept as a section "
            f"headed {INTRODUCTION!r}"
        )
        first = _LegacySection(INTRODUCTION)
        rest = paragraphs
    sections = [first]

    box_end = next((i for i, p in enumerate(rest) if p.gap >= 2), None)
    if (
        box_end
        and box_end % 2 == 0
        and all(_looks_like_heading(rest[i]) for i in range(0, box_end, 2))
    ):
        for i in range(0, box_end, 2):
            sections.append(_LegacySection(rest[i].text, 3, SectionKind.FIELD, [rest[i + 1].text]))
        rest = rest[box_end:]

    current = first
    for index, paragraph in enumerate(rest):
        if _looks_like_heading(paragraph) and index + 1 < len(rest):
            current = _LegacySection(paragraph.text)
            sections.append(current)
        else:
            current.paragraphs.append(paragraph.text)
    return sections


def _legacy_notes(paragraphs: list[_Paragraph], warnings: list[str]) -> dict[str, str]:
    """Footnote texts by number, in the order given."""
    notes: dict[str, str] = {}
    label: str | None = None
    for paragraph in paragraphs:
        match = _LEGACY_FOOTNOTE.match(paragraph.lines[0])
        if match is None:
            # A note's second paragraph: a definition holds one line, so it joins the first.
            if label is not None:
                notes[label] = f"{notes[label]} {' '.join(paragraph.lines)}"
            continue
        label = match.group(1)
        note = " ".join([match.group(2), *paragraph.lines[1:]]).strip()
        if label in notes:
            warnings.append(f"line {paragraph.line}: footnote [{label}] is given twice; ignored")
            label = None
            continue
        notes[label] = note
    return notes


def _attach_notes(
    sections: list[_LegacySection], notes: dict[str, str], warnings: list[str]
) -> list[ParsedSection]:
    """Markdown bodies with references and definitions, and warnings for unmatched ones."""
    bodies = [[_plain_to_markdown(p) for p in s.paragraphs] for s in sections]
    references = [
        list(dict.fromkeys(label for p in s.paragraphs for label in _LEGACY_REFERENCE.findall(p)))
        for s in sections
    ]
    definitions: list[list[str]] = [[] for _ in sections]
    home: dict[str, int] = {}
    for index, (section, labels) in enumerate(zip(sections, references, strict=True)):
        for label in labels:
            if label in notes:
                definitions[index].append(label)
                home.setdefault(label, index)
            else:
                warnings.append(
                    f"reference [{label}] in section {section.heading!r} has no footnote text"
                )
    for label in notes:
        if label in home:
            continue
        earlier = [n for n in home if int(n) < int(label)]
        if earlier:
            index = home[max(earlier, key=int)]
        else:
            index = min(home.values(), default=len(sections) - 1)
        if index < 0:
            warnings.append(f"footnote [{label}] is never referenced; its text is dropped")
            continue
        definitions[index].append(label)
        warnings.append(
            f"footnote [{label}] is never referenced; its text is kept in section "
            f"{sections[index].heading!r}"
        )

    taken: set[str] = set()
    parsed = []
    for section, body, labels in zip(sections, bodies, definitions, strict=True):
        anchor = _unique_anchor(section.heading, taken)
        taken.add(anchor)
        blocks = ["\n\n".join(body)] if body else []
        if labels:
            lines = [f"[^{label}]: {_escape_markdown(notes[label])}" for label in labels]
            blocks.append("\n".join(lines))
        parsed.append(
            ParsedSection(
                heading=section.heading,
                body=normalise_body("\n\n".join(blocks)),
                anchor=anchor,
                level=section.level,
                kind=section.kind,
            )
        )
    return parsed


def _plain_to_markdown(text: str) -> str:
    return _LEGACY_REFERENCE.sub(r"[^\1]", _escape_markdown(text))


def _escape_markdown(text: str) -> str:
    """Plain text made safe to read as Markdown: it shows as it was, no markup appears."""
    escaped = _MARKDOWN_INLINE.sub(lambda m: f"\\{m.group(0)}", text)
    return "\n".join(
        _MARKDOWN_LINE_START.sub(_escape_line_start, line) for line in escaped.split("\n")
    )


def _escape_line_start(match: re.Match[str]) -> str:
    number, delimiter, marker = match.groups()
    if number is None:
        return f"\\{marker}"
    # "2010. Mali…" would start an ordered list; escaping its dot keeps it a paragraph.
    return f"{number}\\{delimiter}"


# Shared helpers


def _split_lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


@functools.cache
def _country_names() -> tuple[re.Pattern[str], dict[str, str]]:
    """A pattern matching any ISO country name, and the code of each name."""
    codes: dict[str, str] = {}
    short: dict[str, set[str]] = {}
    for record in pycountry.countries:
        for attribute in ("name", "common_name", "official_name"):
            name = getattr(record, attribute, None)
            if name:
                codes[_comparable(name)] = record.alpha_2
                # "Iran, Islamic Republic of" is mostly written "Iran".
                head = name.split(",")[0]
                short.setdefault(_comparable(head), set()).add(record.alpha_2)
    for name, found in short.items():
        if name not in codes and len(found) == 1:
            codes[name] = found.pop()
    alternatives = "|".join(re.escape(name) for name in sorted(codes, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)"), codes


def _comparable(text: str) -> str:
    """Text with accents off and apostrophes plain, case kept: "Côte d’Ivoire" → "Cote d'Ivoire"."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def infer_country(text: str) -> str | None:
    """The ISO code of the country the text names most often, or None if it names none.

    Names are those of the ISO list (short, common and official, and "Iran" for "Iran, Islamic
    Republic of"), matched as whole words in their own capitalisation, with accents and the
    apostrophe's shape ignored. A tie goes to the country named first.
    """
    pattern, codes = _country_names()
    counts: dict[str, int] = {}
    for match in pattern.finditer(_comparable(text)):
        code = codes[match.group(0)]
        counts[code] = counts.get(code, 0) + 1
    if not counts:
        return None
    return max(counts, key=lambda code: counts[code])

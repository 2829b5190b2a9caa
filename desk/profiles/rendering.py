"""Turn a profile's sections into HTML, numbering footnotes 1..n across the whole page.

A section body is Markdown whose footnotes are written ``[^label]`` with their text in a
definition line ``[^label]: text`` in the same body. Labels belong to their section, so an edit
to one section can never break another's notes; the numbers readers see are given here, in
reading order, every time the page is drawn. Raw HTML in a body is shown as text, never run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from markdown_it import MarkdownIt
from markupsafe import Markup

from desk.profiles.models import SectionKind

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")

FOOTNOTE_DEFINITION = re.compile(r"^\[\^([^\]\s]+)\]:[ \t]?(.*)$")
FOOTNOTE_REFERENCE = re.compile(r"\[\^([^\]\s]+)\](?!:)")
#: Private-use characters mark where a reference stood while Markdown is rendered.
_MARK = re.compile("\ue000(\\d+)\ue001")
_PRIVATE_USE = re.compile("[\ue000\ue001]")


class SectionLike(Protocol):
    anchor: str
    heading: str
    level: int
    kind: SectionKind

    @property
    def body(self) -> str: ...


@dataclass
class Footnote:
    number: int
    html: Markup
    #: ids of the references that point here, for the back-links.
    reference_ids: list[str] = field(default_factory=list)


@dataclass
class RenderedSection:
    anchor: str
    heading: str
    level: int
    kind: SectionKind
    html: Markup
    #: Summary-box fields shown under this section's heading, before its text.
    fields: list[RenderedSection] = field(default_factory=list)


@dataclass
class RenderedProfile:
    sections: list[RenderedSection]
    footnotes: list[Footnote]


def split_footnotes(body: str) -> tuple[str, dict[str, str]]:
    """Separate a body's footnote definitions from its text.

    A definition runs on over following lines indented by four spaces or a tab.
    """
    text_lines: list[str] = []
    definitions: dict[str, str] = {}
    current: str | None = None
    for line in body.splitlines():
        match = FOOTNOTE_DEFINITION.match(line)
        if match:
            current = match.group(1)
            definitions[current] = match.group(2).strip()
        elif current is not None and (line.startswith("    ") or line.startswith("\t")):
            definitions[current] = f"{definitions[current]} {line.strip()}".strip()
        else:
            current = None
            text_lines.append(line)
    return "\n".join(text_lines).strip("\n"), definitions


def footnote_labels(body: str) -> tuple[list[str], list[str]]:
    """The labels a body references (in order, once each) and the labels it defines."""
    text, definitions = split_footnotes(body)
    referenced = list(dict.fromkeys(FOOTNOTE_REFERENCE.findall(text)))
    return referenced, list(definitions)


class _Numbering:
    """Hands out page-wide numbers in the order references are met."""

    def __init__(self) -> None:
        self.footnotes: list[Footnote] = []
        self._numbers: dict[tuple[str, str], Footnote] = {}

    def reference(self, anchor: str, label: str, definitions: dict[str, str]) -> Markup:
        if label not in definitions:
            return Markup('<sup class="fn-missing">[{}]</sup>').format(label)
        key = (anchor, label)
        note = self._numbers.get(key)
        if note is None:
            note = Footnote(
                number=len(self.footnotes) + 1,
                html=Markup(_markdown.renderInline(definitions[label])),
            )
            self._numbers[key] = note
            self.footnotes.append(note)
        ref_id = f"fnref-{note.number}"
        if note.reference_ids:
            ref_id = f"{ref_id}-{len(note.reference_ids) + 1}"
        note.reference_ids.append(ref_id)
        return Markup(
            '<sup class="fn-ref"><a href="#fn-{n}" id="{rid}" '
            'aria-describedby="footnotes-label">{n}</a></sup>'
        ).format(n=note.number, rid=ref_id)


def _render_body(section: SectionLike, numbering: _Numbering) -> Markup:
    text, definitions = split_footnotes(_PRIVATE_USE.sub("", section.body))
    labels: list[str] = []

    def mark(match: re.Match[str]) -> str:
        labels.append(match.group(1))
        return f"\ue000{len(labels) - 1}\ue001"

    html = _markdown.render(FOOTNOTE_REFERENCE.sub(mark, text))
    return Markup(
        _MARK.sub(
            lambda m: numbering.reference(section.anchor, labels[int(m.group(1))], definitions),
            html,
        )
    )


def _reading_order(sections: Sequence[SectionLike]) -> Iterable[tuple[SectionLike, list]]:
    """Pair each text section with the summary-box fields that follow it."""
    groups: list[tuple[SectionLike, list[SectionLike]]] = []
    for section in sections:
        if section.kind == SectionKind.FIELD and groups:
            groups[-1][1].append(section)
        else:
            groups.append((section, []))
    return groups


def render_profile(sections: Sequence[SectionLike]) -> RenderedProfile:
    """Render sections in reading order: heading, its summary-box fields, then its text."""
    numbering = _Numbering()
    rendered: list[RenderedSection] = []
    for section, fields in _reading_order(sections):
        field_blocks = [
            RenderedSection(f.anchor, f.heading, f.level, f.kind, _render_body(f, numbering))
            for f in fields
        ]
        rendered.append(
            RenderedSection(
                section.anchor,
                section.heading,
                section.level,
                section.kind,
                _render_body(section, numbering),
                field_blocks,
            )
        )
    return RenderedProfile(rendered, numbering.footnotes)

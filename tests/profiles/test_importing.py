"""The parsers: legacy plain-text pages of the Monitor and Markdown profile files."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from desk.profiles.importing import (
    ParsedSection,
    ProfileFileError,
    infer_country,
    parse_legacy_text,
    parse_markdown,
    read_profile_file,
)
from desk.profiles.models import SectionKind
from desk.profiles.rendering import footnote_labels, render_profile, split_footnotes

MALI_SECTIONS = [
    ("Commitment to the Convention on Cluster Munitions", 2, SectionKind.TEXT),
    ("Convention on Cluster Munitions status", 3, SectionKind.FIELD),
    ("Participation in Convention on Cluster Munitions meetings", 3, SectionKind.FIELD),
    ("Key developments", 3, SectionKind.FIELD),
    ("Use, production, transfer, and stockpiling", 2, SectionKind.TEXT),
]


def mali_footnotes(text: str) -> dict[str, str]:
    """The page's own footnote texts, read from its "[n] text" lines."""
    notes = {}
    for line in text.splitlines():
        match = re.match(r"^\[(\d+)\] (.+)$", line.strip())
        if match:
            notes[match.group(1)] = match.group(2).strip()
    return notes


# Legacy plain text: the Mali page


def test_mali_page_gives_the_five_sections_in_order(mali_text):
    parsed = parse_legacy_text(mali_text)
    assert [(s.heading, s.level, s.kind) for s in parsed.sections] == MALI_SECTIONS
    assert [s.anchor for s in parsed.sections] == [
        "commitment-to-the-convention-on-cluster-munitions",
        "convention-on-cluster-munitions-status",
        "participation-in-convention-on-cluster-munitions-meetings",
        "key-developments",
        "use-production-transfer-and-stockpiling",
    ]


def test_mali_page_gives_date_topic_language_and_country_without_warnings(mali_text):
    parsed = parse_legacy_text(mali_text)
    assert parsed.last_updated_on == date(2011, 8, 16)
    assert parsed.topic == "Cluster Munition Ban Policy"
    assert parsed.language == "en"
    assert parsed.country_code == "ML"
    assert parsed.warnings == []


def test_mali_summary_box_values_are_the_field_bodies(mali_text):
    fields = parse_legacy_text(mali_text).sections[1:4]
    assert fields[0].body == "State Party"
    assert fields[1].body.startswith("Attended First Meeting of States Parties")
    assert fields[2].body == "National implementation measures are being prepared"


def test_mali_footnotes_are_defined_in_the_sections_that_cite_them(mali_text):
    sections = parse_legacy_text(mali_text).sections
    labels = [footnote_labels(s.body) for s in sections]
    assert labels[0] == (["1", "2", "3", "4", "5", "6"], ["1", "2", "3", "4", "5", "6"])
    assert labels[1:4] == [([], [])] * 3
    assert labels[4] == (["7", "8"], ["7", "8"])
    definitions = {}
    for section in sections:
        definitions.update(split_footnotes(section.body)[1])
    assert definitions == mali_footnotes(mali_text)


def test_mali_body_holds_the_paragraphs_between_box_and_next_heading(mali_text):
    text, _ = split_footnotes(parse_legacy_text(mali_text).sections[0].body)
    paragraphs = text.split("\n\n")
    assert len(paragraphs) == 9
    assert paragraphs[0].startswith("The Republic of Mali signed the Convention")
    assert paragraphs[-1].startswith("Mali is a party to the Mine Ban Treaty.")
    assert "[^1]" in paragraphs[1] and "[^2]" in paragraphs[1]


def test_site_chrome_and_title_are_not_in_any_section(mali_text):
    bodies = "\n".join(s.heading + "\n" + s.body for s in parse_legacy_text(mali_text).sections)
    for chrome in ("About Us", "Email Notification", "Send us your feedback", "Send the Monitor"):
        assert chrome not in bodies
    assert "Last Updated" not in bodies
    assert "Cluster Munition Ban Policy" not in bodies
    assert "\u00a0" not in bodies


def test_typographic_quotes_are_kept_and_references_become_markdown(mali_text):
    body = parse_legacy_text(mali_text).sections[4].body
    assert "“We have no cluster munitions in Mali.”[^7]" in body
    assert not re.search(r"\[\d+\]", split_footnotes(body)[0])


def test_rendering_the_parsed_mali_page_numbers_notes_one_to_eight(mali_text):
    page = render_profile(parse_legacy_text(mali_text).sections)
    assert [note.number for note in page.footnotes] == list(range(1, 9))
    expected = mali_footnotes(mali_text)
    for note in page.footnotes:
        assert note.html.startswith(expected[str(note.number)][:40])


def test_reference_without_footnote_text_warns_and_stays_a_reference(mali_text):
    parsed = parse_legacy_text(mali_text.replace("[8]", "[8][9]", 1))
    assert parsed.warnings == [
        "reference [9] in section 'Use, production, transfer, and stockpiling' has no footnote text"
    ]
    referenced, defined = footnote_labels(parsed.sections[4].body)
    assert referenced == ["7", "8", "9"]
    assert defined == ["7", "8"]


def test_footnote_never_referenced_warns_and_keeps_its_text_near_its_neighbours(mali_text):
    parsed = parse_legacy_text(mali_text.replace("[4]", "", 1))
    assert len(parsed.warnings) == 1
    assert "footnote [4] is never referenced" in parsed.warnings[0]
    referenced, defined = footnote_labels(parsed.sections[0].body)
    assert "4" not in referenced
    assert "4" in defined


def test_country_option_overrides_the_names_in_the_text(mali_text):
    assert parse_legacy_text(mali_text, country="sn").country_code == "SN"


def test_topic_and_language_options_override_the_page(mali_text):
    parsed = parse_legacy_text(mali_text, topic="Mine Ban Policy", language="fr")
    assert parsed.topic == "Mine Ban Policy"
    assert parsed.language == "fr"
    assert parsed.sections[0].heading == "Commitment to the Convention on Cluster Munitions"


def test_text_naming_no_country_is_an_error_asking_for_the_option():
    text = "Last Updated: 2 May 2012\n\nMine Action\n\nClearance\n\nNothing happened here.\n"
    with pytest.raises(ProfileFileError, match="--country"):
        parse_legacy_text(text)


def test_country_option_that_is_not_a_code_is_an_error(mali_text):
    with pytest.raises(ProfileFileError, match="'Mali' is not an ISO 3166-1 alpha-2"):
        parse_legacy_text(mali_text, country="Mali")


LEGACY_WITHOUT_BOX = (
    "About Us\u00a0\r\n"
    "\r\n"
    "Last Updated: 3 October 2012\r\n"
    "\r\n"
    "Mine Ban Policy\r\n"
    "\r\n"
    "Mine Ban Treaty status\r\n"
    "\r\n"
    "Chad acceded on 6 May 1999.[1]\u00a0\r\n"
    "\r\n"
    "Stockpile destruction\r\n"
    "\r\n"
    "Chad finished destroying its stock in 2002.\r\n"
    "1. This line starts like a list, *but* is plain text_with_underscores.\r\n"
    "\r\n"
    "Transparency reporting\r\n"
    "\r\n"
    "Chad submitted a report in 2012.[2] Its next report\r\n"
    "\r\n"
    "\r\n"
    "[1] A note about accession.\r\n"
    "\r\n"
    "[2] A note about the report,\r\n"
    "\r\n"
    "which runs on in a second paragraph.\r\n"
)


def test_headings_are_found_in_other_profiles_without_a_summary_box():
    parsed = parse_legacy_text(LEGACY_WITHOUT_BOX)
    assert [(s.heading, s.level, s.kind) for s in parsed.sections] == [
        ("Mine Ban Treaty status", 2, SectionKind.TEXT),
        ("Stockpile destruction", 2, SectionKind.TEXT),
        ("Transparency reporting", 2, SectionKind.TEXT),
    ]
    assert parsed.country_code == "TD"
    assert parsed.last_updated_on == date(2012, 10, 3)
    assert parsed.topic == "Mine Ban Policy"
    assert parsed.warnings == []


def test_a_short_last_paragraph_without_full_stop_is_text_not_a_heading():
    last = parse_legacy_text(LEGACY_WITHOUT_BOX).sections[-1]
    assert split_footnotes(last.body)[0] == "Chad submitted a report in 2012.[^2] Its next report"


def test_a_footnote_in_two_paragraphs_becomes_one_definition_line():
    last = parse_legacy_text(LEGACY_WITHOUT_BOX).sections[-1]
    assert split_footnotes(last.body)[1] == {
        "2": "A note about the report, which runs on in a second paragraph."
    }


def test_a_note_cited_in_two_sections_is_defined_in_both():
    text = (
        "Last Updated: 2 May 2012\n\nMine Ban Policy\n\n"
        "Status\n\nChad joined.[1]\n\nStockpiles\n\nNone, as said before.[1]\n\n\n"
        "[1] The shared note.\n"
    )
    parsed = parse_legacy_text(text)
    assert [split_footnotes(s.body)[1] for s in parsed.sections] == [{"1": "The shared note."}] * 2
    page = render_profile(parsed.sections)
    assert "fn-missing" not in "".join(str(s.html) for s in page.sections)


def test_plain_text_that_looks_like_markup_is_shown_as_written():
    section = parse_legacy_text(LEGACY_WITHOUT_BOX).sections[1]
    html = str(render_profile([section]).sections[0].html)
    assert "<ol" not in html and "<em>" not in html
    assert "1. This line starts like a list, *but* is plain text_with_underscores." in html


def test_text_before_the_first_heading_is_kept_as_an_introduction_with_a_warning():
    text = "Last Updated: 2 May 2012\n\nMine Ban Policy\n\nChad joined in 1999.\n"
    parsed = parse_legacy_text(text)
    assert [(s.heading, s.body) for s in parsed.sections] == [
        ("Introduction", "Chad joined in 1999.")
    ]
    assert "Introduction" in parsed.warnings[0]


def test_page_without_last_updated_line_warns_and_leaves_the_date_unset():
    text = "Mine Ban Policy\n\nStatus\n\nChad joined in 1999.\n"
    parsed = parse_legacy_text(text)
    assert parsed.last_updated_on is None
    assert parsed.topic == "Mine Ban Policy"
    assert [s.heading for s in parsed.sections] == ["Status"]
    assert any("Last Updated" in warning for warning in parsed.warnings)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Mali, Mali and Senegal", "ML"),
        ("Côte d’Ivoire and Cote d'Ivoire, then Ghana", "CI"),
        ("Iran and Iraq and Iran", "IR"),
        ("Somalia is not Mali; Somalia.", "SO"),
        ("Papua New Guinea, Papua New Guinea, Guinea", "PG"),
        ("nothing here", None),
    ],
)
def test_country_is_the_one_named_most(text, code):
    assert infer_country(text) == code


# Markdown profile files

MARKDOWN = """---
country: ML
topic: Cluster Munition Ban Policy
language: en
last_updated: 2011-08-16
reviewed: 2012-01-05
---

# Mali: Cluster Munition Ban Policy

## Commitment {#commitment}

Paragraph with a reference.[^1]

[^1]: The footnote text.

### Status {#status .field}

State Party

## Use, production and stockpiling

Text.
"""


def test_markdown_front_matter_and_sections_are_read():
    parsed = parse_markdown(MARKDOWN)
    assert (parsed.country_code, parsed.topic, parsed.language) == (
        "ML",
        "Cluster Munition Ban Policy",
        "en",
    )
    assert parsed.last_updated_on == date(2011, 8, 16)
    assert parsed.reviewed_on == date(2012, 1, 5)
    assert parsed.sections == [
        ParsedSection(
            "Commitment",
            "Paragraph with a reference.[^1]\n\n[^1]: The footnote text.",
            "commitment",
            2,
            SectionKind.TEXT,
        ),
        ParsedSection("Status", "State Party", "status", 3, SectionKind.FIELD),
        ParsedSection(
            "Use, production and stockpiling",
            "Text.",
            "use-production-and-stockpiling",
            2,
            SectionKind.TEXT,
        ),
    ]
    assert parsed.warnings == []


def test_markdown_with_crlf_bom_and_trailing_spaces_reads_the_same():
    messy = "\ufeff" + "\r\n".join(f"{line}  " for line in MARKDOWN.split("\n"))
    assert parse_markdown(messy) == parse_markdown(MARKDOWN)


def test_country_name_is_read_for_codes_outside_the_iso_list():
    parsed = parse_markdown("---\ncountry: XF\ncountry_name: Freedonia\ntopic: T\n---\n")
    assert (parsed.country_code, parsed.country_name) == ("XF", "Freedonia")
    assert parsed.warnings == []


def test_markdown_optional_values_default():
    parsed = parse_markdown("---\ncountry: ml\ntopic: 'Mine Ban Policy'\n---\n\n## A\n\nText.\n")
    assert parsed.country_code == "ML"
    assert parsed.topic == "Mine Ban Policy"
    assert parsed.language == "en"
    assert parsed.last_updated_on is None
    assert parsed.reviewed_on is None


def test_markdown_options_override_the_front_matter():
    parsed = parse_markdown(MARKDOWN, country="SN", topic="Other Topic", language="fr")
    assert (parsed.country_code, parsed.topic, parsed.language) == ("SN", "Other Topic", "fr")


def test_headings_without_anchor_get_unique_slugs_that_avoid_explicit_anchors():
    text = (
        "---\ncountry: ML\ntopic: T\n---\n"
        "## Status\n## Status\n## Other {#status-2}\n## Status\n## Status {.field}\n"
    )
    sections = parse_markdown(text).sections
    assert [s.anchor for s in sections] == [
        "status",
        "status-3",
        "status-2",
        "status-4",
        "status-5",
    ]
    assert sections[4].kind == SectionKind.FIELD
    assert sections[4].heading == "Status"


def test_heading_attributes_are_read_in_any_order_and_other_braces_are_heading_text():
    text = "---\ncountry: ML\ntopic: T\n---\n### Box {.field #box}\n## Sets {a, b}\n"
    first, second = parse_markdown(text).sections
    assert (first.heading, first.anchor, first.kind, first.level) == (
        "Box",
        "box",
        SectionKind.FIELD,
        3,
    )
    assert (second.heading, second.anchor) == ("Sets {a, b}", "sets-a-b")
    (third,) = parse_markdown("---\ncountry: ML\ntopic: T\n---\n## A {#a b}\n").sections
    assert third.heading == "A {#a b}"


def test_text_before_the_first_heading_becomes_an_introduction_with_a_warning():
    parsed = parse_markdown("---\ncountry: ML\ntopic: T\n---\n\nOpening words.\n\n## Next\n")
    assert [(s.heading, s.body) for s in parsed.sections] == [
        ("Introduction", "Opening words."),
        ("Next", ""),
    ]
    assert parsed.warnings == [
        "line 6: text before the first heading is kept as a section headed 'Introduction'"
    ]


def test_deeper_headings_and_fenced_code_stay_in_the_body():
    text = "---\ncountry: ML\ntopic: T\n---\n## A\n\n#### Detail\n\n```\n## not a section\n```\n"
    (section,) = parse_markdown(text).sections
    assert section.body == "#### Detail\n\n```\n## not a section\n```"


def test_markdown_footnote_problems_are_warnings():
    text = "---\ncountry: ML\ntopic: T\n---\n## A\n\nSee.[^x]\n\n[^y]: Unused.\n"
    assert parse_markdown(text).warnings == [
        "reference [^x] in section 'A' has no footnote text",
        "footnote [^y] in section 'A' is never referenced",
    ]


def test_unknown_front_matter_key_is_a_warning():
    parsed = parse_markdown("---\ncountry: ML\ntopic: T\nauthor: me\n---\n## A\n")
    assert parsed.warnings[0].startswith("line 4: unknown front matter key 'author'")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("---\ncountry: ML\ntopic: T\n\n## A\n", "line 1: the front matter opened here"),
        ("---\ncountry: ML\ntopic T\n---\n", "line 3: front matter lines read 'key: value'"),
        ("---\ncountry: ML\ntopic: T\nlast_updated: 16/08/2011\n---\n", "line 4: 'last_updated'"),
        ("---\ncountry: MLI\ntopic: T\n---\n", "line 2: 'MLI' is not an ISO 3166-1 alpha-2"),
        ("---\ncountry: ML\ncountry: SN\n---\n", "line 3: 'country' is given twice"),
        ("---\ncountry: ML\ntopic:\n---\n", "line 3: 'topic' has no value"),
        ("---\ncountry: ML\ntopic: T\nlanguage: english!\n---\n", "line 4: 'english!'"),
        ("---\ncountry: ML\ntopic: T\n---\n## A {#a}\n## B {#a}\n", "line 6: anchor #a is"),
        ("---\ncountry: ML\ntopic: T\n---\n## {#a}\n", "line 5: a section heading has no text"),
        ("---\ntopic: T\n---\n## A\n", "the front matter names no country"),
        ("---\ncountry: ML\n---\n## A\n", "the front matter names no topic"),
    ],
)
def test_bad_front_matter_and_headings_are_errors_naming_the_line(text, message):
    with pytest.raises(ProfileFileError) as error:
        parse_markdown(text)
    assert str(error.value).startswith(message)


def test_markdown_file_is_recognised_by_front_matter_or_name(tmp_path: Path):
    with_front_matter = tmp_path / "profile.txt"
    with_front_matter.write_text(MARKDOWN, encoding="utf-8")
    assert read_profile_file(with_front_matter).sections[0].anchor == "commitment"

    named = tmp_path / "profile.md"
    named.write_text("## Status {.field}\n\nState Party\n", encoding="utf-8")
    parsed = read_profile_file(named, country="ML", topic="Cluster Munition Ban Policy")
    assert parsed.sections == [
        ParsedSection("Status", "State Party", "status", 2, SectionKind.FIELD)
    ]


def test_a_file_that_is_not_utf8_is_read_as_windows_1252_with_a_warning(tmp_path: Path):
    path = tmp_path / "profile.md"
    path.write_bytes("---\ncountry: CI\ntopic: Côte\n---\n## Père\n".encode("cp1252"))
    parsed = read_profile_file(path)
    assert parsed.topic == "Côte"
    assert parsed.sections[0].heading == "Père"
    assert parsed.warnings == ["the file is not UTF-8; it was read as Windows-1252"]

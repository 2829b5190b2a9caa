"""Word-level diffs of section texts, and the three-way merge a rebase uses.

A text is cut into words, runs of white space and lone punctuation marks; the diff is drawn
server-side as escaped HTML with ``<del>`` and ``<ins>``, so it needs no script. Line breaks stay
in the text: the page shows it with ``white-space: pre-wrap``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from markupsafe import Markup, escape

_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Words, runs of white space and punctuation marks; joined again they are the text."""
    return _TOKEN.findall(text)


def _opcodes(old: list[str], new: list[str]) -> list[tuple[str, int, int, int, int]]:
    # autojunk would treat common words ("the ") as noise in long sections and misalign them.
    return SequenceMatcher(None, old, new, autojunk=False).get_opcodes()


@dataclass(frozen=True)
class WordDiff:
    """A drawn diff and how much it changes."""

    html: Markup
    words_added: int
    words_removed: int

    @property
    def has_changes(self) -> bool:
        return bool(self.words_added or self.words_removed)


def _count_words(tokens: list[str]) -> int:
    return sum(1 for token in tokens if token[0].isalnum() or token[0] == "_")


def _segments(before: list[str], after: list[str]) -> list[tuple[bool, list[str], list[str]]]:
    """(unchanged?, old tokens, new tokens) runs; a lone space between two changes joins them.

    Without that, rewording "a b c" as "x y z" would show three changes kept apart by spaces
    that merely happen to match.
    """
    segments: list[tuple[bool, list[str], list[str]]] = []
    for tag, i1, i2, j1, j2 in _opcodes(before, after):
        old, new = before[i1:i2], after[j1:j2]
        if tag != "equal" and segments and not segments[-1][0]:
            segments[-1][1].extend(old)
            segments[-1][2].extend(new)
        else:
            segments.append((tag == "equal", list(old), list(new)))
    merged: list[tuple[bool, list[str], list[str]]] = []
    for index, segment in enumerate(segments):
        between_changes = 0 < index < len(segments) - 1
        if segment[0] and between_changes and "".join(segment[1]).isspace():
            merged[-1][1].extend(segment[1])
            merged[-1][2].extend(segment[2])
            continue
        if merged and not merged[-1][0] and not segment[0]:
            merged[-1][1].extend(segment[1])
            merged[-1][2].extend(segment[2])
            continue
        merged.append((segment[0], list(segment[1]), list(segment[2])))
    for index in range(len(merged) - 1):
        _slide(merged[index], merged[index + 1], merged[index - 1] if index else None)
    return [segment for segment in merged if segment[1] or segment[2]]


def _slide(
    change: tuple[bool, list[str], list[str]],
    after: tuple[bool, list[str], list[str]],
    before: tuple[bool, list[str], list[str]] | None,
) -> None:
    """Move a pure insertion or deletion right past leading spaces and punctuation it shares
    with the text after it, so it reads "It <ins>has </ins>never", not "It<ins> has</ins> never".
    """
    unchanged, old, new = change
    if unchanged or not after[0] or (old and new) or before is None or not before[0]:
        return
    moved = old or new
    following = after[1]
    while moved and following and moved[0] == following[0] and not moved[0][0].isalnum():
        token = moved.pop(0)
        moved.append(following.pop(0))
        before[1].append(token)
        before[2].append(token)
        after[2].pop(0)


def diff_words(old: str, new: str) -> WordDiff:
    """The changes from ``old`` to ``new``: removed words in ``<del>``, added ones in ``<ins>``."""
    parts: list[str] = []
    added = removed = 0
    for unchanged, before, after in _segments(tokenize(old), tokenize(new)):
        if unchanged:
            parts.append(str(escape("".join(before))))
            continue
        if before:
            parts.append(f"<del>{escape(''.join(before))}</del>")
            removed += _count_words(before)
        if after:
            parts.append(f"<ins>{escape(''.join(after))}</ins>")
            added += _count_words(after)
    return WordDiff(Markup("".join(parts)), words_added=added, words_removed=removed)


# --------------------------------------------------------------------------- three-way merge


@dataclass(frozen=True)
class _Hunk:
    """One change to the base: tokens ``start:end`` of the base become ``tokens``."""

    start: int
    end: int
    tokens: tuple[str, ...]
    side: str

    @property
    def is_insertion(self) -> bool:
        return self.start == self.end


def _hunks(base: list[str], other: list[str], side: str) -> list[_Hunk]:
    return [
        _Hunk(i1, i2, tuple(other[j1:j2]), side)
        for tag, i1, i2, j1, j2 in _opcodes(base, other)
        if tag != "equal"
    ]


def _touch(a: _Hunk, b: _Hunk, base: list[str]) -> bool:
    """Do two changes touch the same words, or words with nothing but white space between?

    Changes to neighbouring words are treated as one place: merged silently they could make a
    sentence neither side wrote ("no" → "never had" beside "no" → "no stockpile of").
    """
    first, second = sorted((a, b), key=lambda h: (h.start, h.end))
    if second.start < first.end:
        return True
    return all(token.isspace() for token in base[first.end : second.start])


def _apply(base: list[str], hunks: list[_Hunk], start: int, end: int) -> list[str]:
    """Base tokens ``start:end`` with one side's (non-overlapping) changes applied."""
    out: list[str] = []
    position = start
    for hunk in sorted(hunks, key=lambda h: (h.start, h.end)):
        out.extend(base[position : hunk.start])
        out.extend(hunk.tokens)
        position = hunk.end
    out.extend(base[position:end])
    return out


@dataclass(frozen=True)
class MergeConflict:
    """A place both sides changed differently.

    Where both only added text, both additions were kept (``theirs`` first); otherwise the
    merge kept ``ours`` there and ``theirs`` is what it left out.
    """

    base: str
    ours: str
    theirs: str
    kept_both: bool = False


@dataclass
class MergeResult:
    text: str
    conflicts: list[MergeConflict] = field(default_factory=list)

    @property
    def is_clean(self) -> bool:
        return not self.conflicts


def merge_texts(base: str, ours: str, theirs: str) -> MergeResult:
    """Bring both sides' changes to ``base`` together, word by word.

    Changes to different words are all kept. Where both sides added text at the same place,
    both additions are kept, ``theirs`` first. Where both changed the same or neighbouring
    words in different ways, ``ours`` is kept. Both kinds of place are listed as conflicts, so
    the person merging can check them and fold the other change in by hand: no text is dropped
    without being shown.
    """
    base_tokens = tokenize(base)
    ours_hunks = _hunks(base_tokens, tokenize(ours), "ours")
    theirs_hunks = _hunks(base_tokens, tokenize(theirs), "theirs")
    hunks = sorted(ours_hunks + theirs_hunks, key=lambda h: (h.start, h.end, h.side))
    clusters: list[list[_Hunk]] = []
    for hunk in hunks:
        if clusters and any(_touch(hunk, other, base_tokens) for other in clusters[-1]):
            clusters[-1].append(hunk)
        else:
            clusters.append([hunk])

    out: list[str] = []
    conflicts: list[MergeConflict] = []
    position = 0
    for cluster in clusters:
        start = min(h.start for h in cluster)
        end = max(h.end for h in cluster)
        out.extend(base_tokens[position:start])
        position = end
        ours_hunks = [h for h in cluster if h.side == "ours"]
        theirs_hunks = [h for h in cluster if h.side == "theirs"]
        ours_text = _apply(base_tokens, ours_hunks, start, end)
        if not theirs_hunks:
            out.extend(ours_text)
            continue
        theirs_text = _apply(base_tokens, theirs_hunks, start, end)
        if not ours_hunks or ours_text == theirs_text:
            out.extend(theirs_text)
            continue
        kept_both = all(h.is_insertion and h.start == start for h in cluster)
        out.extend(theirs_text + ours_text if kept_both else ours_text)
        conflicts.append(
            MergeConflict(
                base="".join(base_tokens[start:end]),
                ours="".join(ours_text),
                theirs="".join(theirs_text),
                kept_both=kept_both,
            )
        )
    out.extend(base_tokens[position:])
    return MergeResult("".join(out), conflicts)

"""Which language a page speaks: reader pages in English or French, staff pages in English.

The French catalogue is kept as a ``.po`` file only; :func:`init_app` compiles it into the
instance folder when the app starts (and again only when the ``.po`` changed), so no binary
file is ever committed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, g, request
from flask_babel import format_decimal, get_babel, gettext, refresh

LANGUAGES = ("en", "fr")
#: The catalogues as translators edit them: <dir>/<lang>/LC_MESSAGES/messages.po.
SOURCE_DIRECTORY = Path(__file__).resolve().parent.parent / "translations"
DOMAIN = "messages"


def select_locale() -> str:
    """The page's own language if it set one, else an explicit ``?lang=``, else the browser's."""
    forced = g.get("page_language")
    if forced in LANGUAGES:
        return forced
    if request.path.startswith("/desk") or request.path.startswith("/login"):
        return "en"
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return asked
    return request.accept_languages.best_match(LANGUAGES) or "en"


def reader_language(content_language: str | None = None) -> str:
    """The language of a reader page about content written in ``content_language``.

    An explicit ``?lang=`` wins (the visible language switch); then the content's own language
    when it is not English (a French profile gets a French form); then the browser's choice.
    """
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return asked
    if content_language in LANGUAGES and content_language != "en":
        return content_language
    return request.accept_languages.best_match(LANGUAGES) or "en"


def use_language(language: str) -> None:
    """Make the rest of this request speak ``language`` (texts, form errors, emails' default)."""
    g.page_language = language
    refresh()


def format_size(size: int) -> str:
    """A size in the reader's words: "20 MB", "512 KB" ("20 Mo", "512 Ko" in French)."""
    if size >= 1024 * 1024:
        return gettext("%(number)s MB", number=format_decimal(round(size / 1024**2, 1)))
    if size >= 1024:
        return gettext("%(number)s KB", number=format_decimal(round(size / 1024, 1)))
    return gettext("%(number)s bytes", number=format_decimal(size))


def init_app(app: Flask) -> None:
    """Compile the catalogues into ``instance/translations`` and point Flask-Babel at them."""
    target = Path(app.instance_path) / "translations"
    compile_catalogues(SOURCE_DIRECTORY, target)
    get_babel(app).translation_directories = [str(target)]
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(target)


def compile_catalogues(source: Path, target: Path) -> list[Path]:
    """Write a ``.mo`` beside a copy of each ``.po``'s digest; an unchanged ``.po`` is skipped.

    Each file is written under a temporary name and renamed, so workers starting together never
    read half a catalogue. Returns the ``.mo`` files written.
    """
    written: list[Path] = []
    for po_path in sorted(source.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo_path = target / po_path.relative_to(source).with_suffix(".mo")
        digest_path = mo_path.with_suffix(".sha256")
        data = po_path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if mo_path.exists() and digest_path.exists() and digest_path.read_text() == digest:
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as handle:
            catalogue = read_po(handle, locale=po_path.parts[-3], domain=DOMAIN)
        _replace(mo_path, lambda out, c=catalogue: write_mo(out, c))
        _replace(digest_path, lambda out, d=digest: out.write(d.encode()))
        written.append(mo_path)
    return written


def _replace(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
        try:
            write(handle)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
    os.replace(handle.name, path)

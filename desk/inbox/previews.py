"""PDF attachments shown to staff as pictures of their pages, drawn on the server.

A reader's PDF is never opened by the staff member's browser: the browser's PDF viewer runs
the document's scripts and forms in the desk's origin-adjacent context, and sandboxed pages
refuse it anyway. PDFium (the renderer Chromium uses) draws each page to a PNG here instead,
with scripts off, at a bounded size and for a bounded number of pages.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import pypdfium2

#: Pages shown in a preview; the rest are in the downloaded file.
MAX_PREVIEW_PAGES = 20
#: The width a page is drawn at, in pixels (a page wider than tall is drawn as wide).
PAGE_WIDTH_PX = 1000
#: Never draw more pixels than this for one page, whatever its declared size.
MAX_PAGE_PIXELS = 4_000_000


class PreviewError(Exception):
    """The file cannot be previewed (damaged, encrypted, or not a PDF); download it instead."""


@dataclass(frozen=True)
class PdfOutline:
    pages: int

    @property
    def shown(self) -> int:
        return min(self.pages, MAX_PREVIEW_PAGES)


def _pdfium():  # type: ignore[no-untyped-def]
    """PDFium, loaded on the first preview: importing it costs every process 8 MB of memory."""
    import pypdfium2

    return pypdfium2


def _open(stream: BinaryIO) -> pypdfium2.PdfDocument:
    pdfium = _pdfium()
    try:
        return pdfium.PdfDocument(stream.read())
    except pdfium.PdfiumError as error:
        raise PreviewError(str(error)) from error


def pdf_outline(stream: BinaryIO) -> PdfOutline:
    document = _open(stream)
    try:
        return PdfOutline(pages=len(document))
    finally:
        document.close()


def pdf_page_png(stream: BinaryIO, number: int) -> bytes:
    """Page ``number`` (from 1) as a PNG, PAGE_WIDTH_PX wide, within MAX_PAGE_PIXELS."""
    pdfium = _pdfium()
    document = _open(stream)
    try:
        if not 1 <= number <= min(len(document), MAX_PREVIEW_PAGES):
            raise PreviewError(f"there is no page {number} to preview")
        page = document[number - 1]
        width, height = page.get_size()
        if width <= 0 or height <= 0:
            raise PreviewError("the page has no size")
        scale = PAGE_WIDTH_PX / width
        if width * height * scale * scale > MAX_PAGE_PIXELS:
            scale = (MAX_PAGE_PIXELS / (width * height)) ** 0.5
        image = page.render(scale=scale, may_draw_forms=False).to_pil()
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=False)
        return out.getvalue()
    except pdfium.PdfiumError as error:
        raise PreviewError(str(error)) from error
    finally:
        document.close()

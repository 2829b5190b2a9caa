"""Public pages: the list of country profiles and each profile."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from flask import (
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale

from desk import __version__
from desk.core.locale import reader_language, use_language
from desk.core.text import fold
from desk.profiles import bp
from desk.profiles.models import Profile
from desk.profiles.page_cache import page_cache
from desk.profiles.queries import (
    find_profile,
    profile_sections,
    published_profiles,
    what_changed,
)
from desk.profiles.rendering import RenderedProfile, render_profile

#: How many rendered profiles each process keeps; a profile is re-rendered when it changes.
RENDER_CACHE_SIZE = 256


@bp.get("/")
def home() -> Response:
    return redirect(url_for("profiles.index"))


@bp.get("/profiles/")
def index() -> str:
    query = request.args.get("q", "").strip()
    profiles = published_profiles()
    if query:
        needle = fold(query)
        profiles = [p for p in profiles if needle in fold(f"{p.country.name} {p.topic}")]
    return render_template("profiles/index.html", profiles=profiles, query=query)


@bp.get("/profiles/<country_slug>/<topic_slug>")
def detail(country_slug: str, topic_slug: str) -> Response:
    """The public profile: served from the page cache while its ETag holds, 304 if unchanged."""
    language = request.args.get("lang")
    # The raw header, not the negotiated locale: a cache hit then costs no negotiation.
    key = (country_slug, topic_slug, language, request.headers.get("Accept-Language", ""))
    cache = page_cache()
    has_flashes = _has_flashes()
    ttl = current_app.config["DESK_PAGE_CACHE_SECONDS"]
    entry = None if has_flashes else cache.fresh(key, ttl)
    profile = None
    if entry is None:
        profile = find_profile(country_slug, topic_slug, language)
        if profile is None:
            abort(404)
        use_language(reader_language(profile.language))
        entry = cache.confirm(key, _page_etag(profile), profile.content_changed_at)
    if entry.matches(request):
        return Response(status=304, headers=entry.headers)
    if entry.body is None or has_flashes:
        if profile is None:
            profile = find_profile(country_slug, topic_slug, language)
            if profile is None:
                abort(404)
            use_language(reader_language(profile.language))
        body = render_template(
            "profiles/detail.html",
            profile=profile,
            page=_rendered(profile),
            updates=what_changed(profile),
        )
        entry.body = body.encode()
    return Response(entry.body, headers=entry.headers, mimetype="text/html")


def _has_flashes() -> bool:
    """Flashed messages make a page personal; only a visitor with a session can have any."""
    if current_app.config["SESSION_COOKIE_NAME"] not in request.cookies:
        return False
    return bool(session.get("_flashes"))


def _page_etag(profile: Profile) -> str:
    """Changes whenever the page's bytes could: the text, the language, the deployment."""
    salt = current_app.extensions.get("desk_page_salt")
    if salt is None:
        shown = sorted(
            (k, repr(v))
            for k, v in current_app.config.items()
            if k.startswith("DESK_SITE_") or k == "DESK_TIMEZONE"
        )
        salt = hashlib.sha256(repr((shown, __version__)).encode()).hexdigest()[:12]
        current_app.extensions["desk_page_salt"] = salt
    return f"p{profile.id}-v{profile.content_version}-{get_locale()}-{salt}"


def _rendered(profile: Profile) -> RenderedProfile:
    """The profile's rendered sections, cached per process until its content version moves."""
    cache: OrderedDict[tuple[int, int], RenderedProfile] = current_app.extensions.setdefault(
        "desk_render_cache", OrderedDict()
    )
    key = (profile.id, profile.content_version)
    page = cache.get(key)
    if page is None:
        page = render_profile(profile_sections(profile))
        cache[key] = page
        while len(cache) > RENDER_CACHE_SIZE:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return page

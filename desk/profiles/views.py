"""Public pages: the list of country profiles and each profile."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from flask import Response, abort, current_app, redirect, render_template, request, url_for
from flask_babel import get_locale

from desk import __version__
from desk.core.text import fold
from desk.profiles import bp
from desk.profiles.models import Profile
from desk.profiles.queries import find_profile, profile_sections, published_profiles
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
    profile = find_profile(country_slug, topic_slug, request.args.get("lang"))
    if profile is None:
        abort(404)
    etag = _page_etag(profile)
    response = Response(mimetype="text/html")
    response.set_etag(etag)
    response.last_modified = profile.content_changed_at
    response.cache_control.no_cache = True
    response.vary.add("Accept-Language")
    if _is_fresh(etag, profile):
        response.status_code = 304
        return response
    response.set_data(
        render_template("profiles/detail.html", profile=profile, page=_rendered(profile))
    )
    return response


def _is_fresh(etag: str, profile: Profile) -> bool:
    """Does the client's cached copy still match (If-None-Match first, then If-Modified-Since)?"""
    if request.if_none_match:
        return request.if_none_match.contains(etag)
    since = request.if_modified_since
    return since is not None and profile.content_changed_at.replace(microsecond=0) <= since


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

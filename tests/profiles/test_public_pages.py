from datetime import date

import pytest
import sqlalchemy as sa

from desk.extensions import db
from desk.profiles.models import Profile, SectionKind, SectionRevision

MALI_SECTIONS = [
    ("Commitment", "Signed in 2008.[^a] Ratified in 2010.[^b]\n\n[^a]: Note A.\n[^b]: Note B."),
    ("Status", "State Party", SectionKind.FIELD),
    ("Use", "No use is known.[^x]\n\n[^x]: Note X."),
]


def test_profile_list_shows_countries_with_last_updated(client, create_profile):
    create_profile("ML", last_updated_on=date(2011, 8, 16))
    create_profile("FR", "Mine Ban Policy")
    html = client.get("/profiles/").get_data(as_text=True)
    assert "Mali" in html
    assert "France" in html
    assert "16 August 2011" in html
    assert 'href="/profiles/mali/cluster-munition-ban-policy"' in html


def test_profile_list_filter_folds_accents_and_case(client, create_profile):
    create_profile("CI", "Mine Ban Policy")
    create_profile("ML")
    html = client.get("/profiles/?q=cote").get_data(as_text=True)
    assert "Côte" in html
    assert "Mali" not in html


def test_profile_page_shows_title_date_and_sections_in_order(client, create_profile):
    create_profile("ML", sections=MALI_SECTIONS, last_updated_on=date(2011, 8, 16))
    response = client.get("/profiles/mali/cluster-munition-ban-policy")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'Last Updated: <time datetime="2011-08-16">16 August 2011</time>' in html
    assert html.index('id="commitment"') < html.index('id="status"') < html.index('id="use"')
    assert html.index('id="status"') < html.index("Signed in 2008")


def test_footnotes_are_numbered_across_the_page_with_links_both_ways(client, create_profile):
    create_profile("ML", sections=MALI_SECTIONS)
    html = client.get("/profiles/mali/cluster-munition-ban-policy").get_data(as_text=True)
    for number in (1, 2, 3):
        assert f'href="#fn-{number}" id="fnref-{number}"' in html
        assert f'<li id="fn-{number}">' in html
        assert f'href="#fnref-{number}" class="fn-back"' in html
    assert html.index("Note A.") < html.index("Note B.") < html.index("Note X.")
    assert 'id="fn-4"' not in html


def test_raw_html_in_a_section_is_shown_as_text(client, create_profile):
    create_profile("ML", sections=[("Overview", "<script>alert(1)</script> fine")])
    html = client.get("/profiles/mali/cluster-munition-ban-policy").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_conditional_get_answers_304_with_the_same_etag(client, create_profile):
    create_profile("ML")
    first = client.get("/profiles/mali/cluster-munition-ban-policy")
    etag = first.headers["ETag"]
    assert first.headers["Last-Modified"]
    second = client.get(
        "/profiles/mali/cluster-munition-ban-policy", headers={"If-None-Match": etag}
    )
    assert second.status_code == 304
    assert second.headers["ETag"] == etag
    assert second.get_data() == b""
    by_date = client.get(
        "/profiles/mali/cluster-munition-ban-policy",
        headers={"If-Modified-Since": first.headers["Last-Modified"]},
    )
    assert by_date.status_code == 304


def test_etag_changes_when_the_profile_changes(client, create_profile):
    profile = create_profile("ML")
    etag = client.get("/profiles/mali/cluster-munition-ban-policy").headers["ETag"]
    profile.sections[0].current_revision.body = "Changed text."
    profile.touch()
    db.session.commit()
    response = client.get(
        "/profiles/mali/cluster-munition-ban-policy", headers={"If-None-Match": etag}
    )
    assert response.status_code == 200
    assert response.headers["ETag"] != etag
    assert "Changed text." in response.get_data(as_text=True)


def test_unknown_country_or_topic_is_a_404_page(client, create_profile):
    create_profile("ML")
    for path in ("/profiles/atlantis/cluster-munition-ban-policy", "/profiles/mali/no-topic"):
        response = client.get(path)
        assert response.status_code == 404
        assert "Page not found" in response.get_data(as_text=True)


def test_unpublished_profile_is_not_public(client, create_profile):
    profile = create_profile("ML")
    profile.is_published = False
    db.session.commit()
    assert client.get("/profiles/mali/cluster-munition-ban-policy").status_code == 404
    assert "Mali" not in client.get("/profiles/").get_data(as_text=True)


def test_site_name_navigation_and_footer_are_settings(app, client, create_profile):
    app.config.update(
        DESK_SITE_NAME="Landmine Monitor",
        DESK_SITE_NAV=[["Research", "https://monitor.example/research"]],
        DESK_SITE_FOOTER="© The Monitor",
        DESK_SITE_LOGO_URL="https://monitor.example/logo.png",
    )
    html = client.get("/profiles/").get_data(as_text=True)
    assert "Landmine Monitor" in html
    assert 'href="https://monitor.example/research"' in html
    assert "© The Monitor" in html
    assert 'src="https://monitor.example/logo.png"' in html


def test_profile_page_has_landmarks_and_one_h1(client, create_profile):
    create_profile("ML", sections=MALI_SECTIONS)
    html = client.get("/profiles/mali/cluster-munition-ban-policy").get_data(as_text=True)
    assert html.count("<h1") == 1
    for landmark in ("<header", "<main", "<footer", "<nav", 'class="skip-link"'):
        assert landmark in html
    assert '<html lang="en">' in html


def test_page_cache_serves_from_memory_until_it_must_check_again(app, client, create_profile):
    import time

    profile = create_profile("ML", sections=[("Overview", "First text.")])
    path = "/profiles/mali/cluster-munition-ban-policy"
    app.config["DESK_PAGE_CACHE_SECONDS"] = 60
    first = client.get(path)
    # Another worker's change: the row moves without this process knowing.
    db.session.execute(
        sa.update(Profile).where(Profile.id == profile.id).values(content_version=99)
    )
    db.session.execute(
        sa.update(SectionRevision)
        .where(SectionRevision.id == profile.sections[0].current_revision_id)
        .values(body="Second text.")
    )
    db.session.commit()
    cached = client.get(path)
    assert cached.headers["ETag"] == first.headers["ETag"]
    assert "First text." in cached.get_data(as_text=True)
    app.config["DESK_PAGE_CACHE_SECONDS"] = 0.01
    time.sleep(0.02)
    checked = client.get(path)
    assert checked.headers["ETag"] != first.headers["ETag"]
    assert "Second text." in checked.get_data(as_text=True)


def test_a_change_made_in_this_process_shows_at_once(app, client, create_profile):
    profile = create_profile("ML", sections=[("Overview", "First text.")])
    path = "/profiles/mali/cluster-munition-ban-policy"
    app.config["DESK_PAGE_CACHE_SECONDS"] = 60
    etag = client.get(path).headers["ETag"]
    profile.sections[0].current_revision.body = "Corrected text."
    profile.touch()
    db.session.commit()
    response = client.get(path, headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert "Corrected text." in response.get_data(as_text=True)


def test_revalidation_is_answered_before_the_app_while_the_cache_holds(
    app, client, create_profile, monkeypatch
):
    from desk.profiles import views

    create_profile("ML")
    path = "/profiles/mali/cluster-munition-ban-policy"
    app.config["DESK_PAGE_CACHE_SECONDS"] = 60
    etag = client.get(path).headers["ETag"]

    def no_database(*args, **kwargs):
        raise LookupError("the app was asked")

    monkeypatch.setattr(views, "find_profile", no_database)
    answer = client.get(path, headers={"If-None-Match": etag})
    assert answer.status_code == 304
    assert answer.headers["ETag"] == etag
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    with pytest.raises(LookupError):
        client.get(path, headers={"If-None-Match": etag, "Accept-Language": "fr"})

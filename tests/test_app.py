from flask import Flask


def test_home_redirects_to_profiles(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/profiles/")


def test_every_response_carries_security_headers(client):
    response = client.get("/profiles/")
    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_unknown_page_is_a_404_in_the_site_style(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)


def test_settings_come_from_environment_over_instance_file(tmp_path, monkeypatch):
    from desk import create_app

    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text(
        'DESK_SITE_NAME = "From file"\nDESK_TIMEZONE = "Europe/Paris"\n'
    )
    monkeypatch.setenv("DESK_SITE_NAME", "From environment")
    app: Flask = create_app({"DESK_INSTANCE_PATH": str(instance), "DESK_SECRET_KEY": "x"})
    assert app.config["DESK_SITE_NAME"] == "From environment"
    assert app.config["DESK_TIMEZONE"] == "Europe/Paris"

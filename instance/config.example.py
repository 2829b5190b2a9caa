# Copy to instance/config.py and change what you need; environment variables of the same name
# override this file. Every setting is listed in the README.

# DESK_ENV = "production"
# DESK_SECRET_KEY = "a long random string"
# DESK_DATABASE_URL = "postgresql+psycopg://desk@127.0.0.1:5432/desk"
# DESK_TIMEZONE = "Europe/Geneva"
# DESK_SITE_NAME = "Landmine and Cluster Munition Monitor"
# DESK_SITE_URL = "https://desk.example.org"
# DESK_SITE_NAV = [["Country profiles", "/profiles/"], ["About", "https://example.org/about"]]
# DESK_SITE_FOOTER = "© The Monitor"

"""distviz settings: read from the environment, with safe defaults for local use.

Embedded default: SQLite + the in-memory channel layer (one daphne process).
Past one process: set DATABASE_URL (PostgreSQL) and REDIS_URL (channels-redis).
"""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from distviz import secretkey

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


DEBUG = env_bool("DJANGO_DEBUG", True)
# No secret in the repository: the environment, else the key file (made on first run in debug,
# and by `make run` / `make classroom`); with debug off and neither, refuse to start.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "") or (secretkey.ensure() if DEBUG else secretkey.read())
if not SECRET_KEY:
    raise ImproperlyConfigured(
        f"No secret key: set DJANGO_SECRET_KEY, or run `python -m distviz.secretkey` once to make {secretkey.key_file()} "
        "(`make run` and `make classroom` do this for you)."
    )

ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
# The address students open (`make classroom` sets it to the laptop's network address): join
# panels and QR codes show it instead of whatever host the presenter typed.
DISTVIZ_PUBLIC_URL = os.environ.get("DISTVIZ_PUBLIC_URL", "").strip().rstrip("/")
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "channels",
    "apps.rooms",
    "apps.hashring",
    "apps.logpartitions",
    "apps.lockquorums",
    "apps.workflowgraphs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Pages (a room page carries its whole picture) go out compressed; Django's GZip pads its
    # output with random bytes against BREACH-style length attacks.
    "django.middleware.gzip.GZipMiddleware",
    "apps.rooms.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "distviz.urls"
ASGI_APPLICATION = "distviz.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Keep connections: reconnecting costs more than a command itself (measured by bench/).
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the page views read while a command is being written.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = "PRAGMA journal_mode=WAL;"
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["OPTIONS"]["timeout"] = 20
    # A file, not :memory:, so a live server process in the browser tests sees the same data.
    # DISTVIZ_TEST_DB gives a test run its own file (two runs at once on one file break each other).
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("DISTVIZ_TEST_DB") or str(BASE_DIR / ".test-db.sqlite3")}

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "max_connections": 1000, "socket_timeout": 15}],
                "capacity": 1500,
                "expiry": 10,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}}

# How many server processes share this database. The in-memory channel layer cannot
# reach another process, so more than one worker without REDIS_URL is refused at start.
DISTVIZ_WORKERS = env_int("DISTVIZ_WORKERS", 1)

SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 30

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("DISTVIZ_STATIC_ROOT") or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG
# Outside debug, static files are fingerprinted and pre-compressed (gzip and brotli) by
# collectstatic, and whitenoise serves them with a year's cache lifetime (their names change
# when their content does). `make run` and `make classroom` run collectstatic first.
if not DEBUG:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"

X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Behind TLS (a proxy with a certificate) the cookies are Secure and HTTP redirects to HTTPS.
# A classroom on a laptop serves plain HTTP on the local network (`make run`, `make classroom`
# set DISTVIZ_HTTPS=false): nobody there has a certificate for the laptop's address.
DISTVIZ_HTTPS = env_bool("DISTVIZ_HTTPS", not DEBUG)
if DISTVIZ_HTTPS:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Limits for what one command may ask of a room (issue 2's defaults).
DISTVIZ_LIMITS = {
    "max_nodes": env_int("DISTVIZ_MAX_NODES", 64),
    "max_vnodes": env_int("DISTVIZ_MAX_VNODES", 1000),
    "max_keys": env_int("DISTVIZ_MAX_KEYS", 100_000),
    "max_name_length": 40,
    "max_frame_bytes": env_int("DISTVIZ_MAX_FRAME_BYTES", 16 * 1024),
}
# A snapshot of the state is written every this many events, so loading a room folds a short tail.
DISTVIZ_SNAPSHOT_EVERY = env_int("DISTVIZ_SNAPSHOT_EVERY", 25)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "WARNING")},
}

"""Settings for Readiness.

One module for every deploy: anything that differs between deploys comes from the environment,
and a bad value fails at start-up with ImproperlyConfigured. With no environment at all the app
runs on its embedded default: SQLite, Celery tasks run eagerly, email printed to the console.
"""

import importlib.util
import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DJANGO_ENV = env_str("DJANGO_ENV", "development")
if DJANGO_ENV not in ("development", "production"):
    raise ImproperlyConfigured(f"DJANGO_ENV must be development or production, not {DJANGO_ENV!r}")
PRODUCTION = DJANGO_ENV == "production"

DEBUG = env_bool("DEBUG", not PRODUCTION)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when DJANGO_ENV=production")
    # Development only: a fixed, obviously insecure key so sessions survive restarts.
    SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"  # noqa: S105 (dev only)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DJANGO_ENV=production")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "readiness",
    "agencies",
    "surveys",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "readiness.accounts.middleware.RequireMFAMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

if PRODUCTION:
    # Static files straight from gunicorn; in development runserver serves them.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "readiness.urls"
WSGI_APPLICATION = "readiness.wsgi.application"
ASGI_APPLICATION = "readiness.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "readiness.context_processors.navigation",
            ],
        },
    },
]

# Database: DATABASE_URL (e.g. postgres://user@host:5432/readiness), or a SQLite file.
SQLITE_PATH = Path(env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")))
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{SQLITE_PATH}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60 if PRODUCTION else 0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's, with a health check that asks the server only when its socket has news.
    DATABASES["default"]["ENGINE"] = "readiness.postgresql"
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded default serves concurrent requests too (two commanders answering at once):
    # take the write lock when a transaction starts and wait for it, instead of failing with
    # "database is locked" when a read turns into a write; WAL lets readers go on meanwhile.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        transaction_mode="IMMEDIATE",
        timeout=20,
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "readiness.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "account_login"

# Accounts (django-allauth): sign-in by email, no open sign-up (people are invited), verified
# email addresses, password reset by email, TOTP with recovery codes.
ACCOUNT_ADAPTER = "readiness.accounts.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Readiness] "
ACCOUNT_SESSION_REMEMBER = None  # ask ("keep me signed in")
# Failed sign-ins: at most 10 a minute from one address, and 5 per account in 5 minutes.
ACCOUNT_RATE_LIMITS = {"login_failed": env_str("LOGIN_FAILED_RATE_LIMIT", "10/m/ip,5/300s/key")}
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Readiness"
MFA_ADAPTER = "readiness.accounts.adapters.MFAAdapter"
# Roles that must turn on two-factor authentication before they can use the app.
MFA_REQUIRED_ROLES = env_list("MFA_REQUIRED_ROLES", ["coordinator", "official"])
_unknown_roles = set(MFA_REQUIRED_ROLES) - {"coordinator", "commander", "official"}
if _unknown_roles:
    raise ImproperlyConfigured(
        f"MFA_REQUIRED_ROLES: unknown role(s) {', '.join(sorted(_unknown_roles))} "
        "(expected coordinator, commander, official)"
    )
# Invitation links expire after this many seconds (password-reset links after an hour).
INVITATION_MAX_AGE = env_int("INVITATION_MAX_AGE", 3 * 24 * 3600)
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3600)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "America/Chicago")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Leaflet's files come from the django-leaflet package. Only its static folder is used: as an
# installed app its admin module would need GDAL, which the app has no use for.
_LEAFLET_DIR = Path(importlib.util.find_spec("leaflet").submodule_search_locations[0])
STATICFILES_DIRS = [BASE_DIR / "static", _LEAFLET_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "readiness.storage.ProductionStaticStorage"  # whitenoise's, URLs worked out once
            if PRODUCTION
            else "readiness.storage.DevelopmentStaticStorage"
        )
    },
}

# The admin lives at a configurable path so it is not where scanners look first.
ADMIN_PATH = env_str("ADMIN_PATH", "admin/").strip("/") + "/"

# Email: SMTP when EMAIL_HOST is set, otherwise printed to the console. (Django 6.1 mailers;
# the old EMAIL_* settings are deprecated, so ours are read from the environment only.)
EMAIL_HOST = env_str("EMAIL_HOST", "")
if EMAIL_HOST:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": EMAIL_HOST,
                "port": env_int("EMAIL_PORT", 25),
                "username": env_str("EMAIL_HOST_USER", ""),
                "password": env_str("EMAIL_HOST_PASSWORD", ""),
                "use_tls": env_bool("EMAIL_USE_TLS", False),
                "use_ssl": env_bool("EMAIL_USE_SSL", False),
                "timeout": env_int("EMAIL_TIMEOUT", 15),
            },
        }
    }
elif PRODUCTION:
    # Polls are delivered by email: a production app that cannot send is misconfigured.
    raise ImproperlyConfigured("EMAIL_HOST must be set when DJANGO_ENV=production")
else:
    # Printed to the console, each email headed by who it is for and the links it carries.
    MAILERS = {"default": {"BACKEND": "readiness.mail.ConsoleEmailBackend"}}
del EMAIL_HOST  # a deprecated setting name; the value lives in MAILERS
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Readiness <readiness@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Celery: Redis as broker and result store when REDIS_URL is set; otherwise tasks run eagerly
# in the calling process, so the embedded default needs no broker.
REDIS_URL = env_str("REDIS_URL", "")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = REDIS_URL or "memory://"
# kombu's Redis transport, sharing one client for publishing (readiness.broker); rediss://
# keeps kombu's own, which takes TLS from the scheme.
CELERY_BROKER_TRANSPORT = "readiness.broker:Transport" if REDIS_URL.startswith("redis://") else None
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
# Nothing in the app waits for a task's result: not storing them spares each queued task a
# subscription to its result channel in the web process, and the worker a write. A task whose
# result is read (the health check) says so itself.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    # expires: a run still waiting when the next is due is dropped, not piled up.
    "chase-polls": {
        "task": "surveys.tasks.chase_polls",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Claims not refreshed for two minutes belong to a dead worker: taken back within 1-3 min.
    "requeue-stuck-invitations": {
        "task": "surveys.tasks.requeue_stuck_invitations",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Answers' confirmation emails: each answer queues a run as it commits (one for many);
    # this one sends what a broker that could not be reached then left due.
    "send-reply-confirmations": {
        "task": "surveys.tasks.send_reply_confirmations",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "fetch-reply-mailbox": {
        "task": "surveys.tasks.fetch_reply_mailbox",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "remind-agency-verification": {
        "task": "agencies.tasks.remind_verification",
        "schedule": 3600.0,
        "options": {"expires": 3500},
    },
}

if PRODUCTION and not REDIS_URL:
    # Sign-in rate limits and used two-factor codes live in the cache: it must be shared by
    # every web process, and Celery needs its broker.
    raise ImproperlyConfigured("REDIS_URL must be set when DJANGO_ENV=production")
CACHES = {
    "default": (
        {"BACKEND": "readiness.cache.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Dashboards. The map's tile server: any {z}/{x}/{y} template (a self-hosted tile server in
# production; empty for no base map, which leaves the agencies on a plain background). Its
# origin is added to the CSP's img-src.
MAP_TILES_URL = env_str("MAP_TILES_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
MAP_TILES_ATTRIBUTION = env_str(
    "MAP_TILES_ATTRIBUTION",
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
)
MAP_TILES_ORIGINS = (
    [urlsplit(MAP_TILES_URL)._replace(path="", query="", fragment="").geturl()]
    if MAP_TILES_URL
    else []
)
# How often an open dashboard asks for news (seconds); it swaps in new figures only on news.
DASHBOARD_REFRESH_SECONDS = env_int("DASHBOARD_REFRESH_SECONDS", 5)
# A poll's answers and invitations are counted for that refresh at most this often (seconds),
# once for every process and watcher; a saved answer shows at the next refresh, a delivery
# within this.
POLL_ACTIVITY_CACHE_SECONDS = env_int("POLL_ACTIVITY_CACHE_SECONDS", 2)
# Each agency's record is confirmed by its commander at least this often; a reminder goes to the
# agency when it is due, and again every AGENCY_VERIFY_REMIND_DAYS while it stays unconfirmed.
# Texts: "console" (printed, the embedded default) or "twilio" (Twilio's REST API, or any
# provider speaking it at SMS_API_URL). Status callbacks are verified with SMS_AUTH_TOKEN.
SMS_PROVIDER = env_str("SMS_PROVIDER", "console")
if SMS_PROVIDER not in ("console", "twilio"):
    raise ImproperlyConfigured("SMS_PROVIDER must be console or twilio")
SMS_API_URL = env_str("SMS_API_URL", "https://api.twilio.com")
SMS_ACCOUNT_SID = env_str("SMS_ACCOUNT_SID", "")
SMS_AUTH_TOKEN = env_str("SMS_AUTH_TOKEN", "")
SMS_FROM = env_str("SMS_FROM", "")  # the sending number (E.164) or a messaging service id (MG...)
SMS_TIMEOUT = env_int("SMS_TIMEOUT", 10)
if SMS_PROVIDER == "twilio" and not (SMS_ACCOUNT_SID and SMS_AUTH_TOKEN and SMS_FROM):
    raise ImproperlyConfigured(
        "SMS_PROVIDER=twilio needs SMS_ACCOUNT_SID, SMS_AUTH_TOKEN and SMS_FROM"
    )
# Answers by email reply: invitation emails get a signed Reply-To on this mailbox
# (answers+r<id>.<signature>@...), which Celery beat reads over IMAP with TLS every minute; or a
# provider that receives email POSTs it to /email/inbound/ with INBOUND_EMAIL_SECRET.
REPLY_MAILBOX = env_str("REPLY_MAILBOX", "")
IMAP_HOST = env_str("IMAP_HOST", "")
IMAP_PORT = env_int("IMAP_PORT", 993)
IMAP_USER = env_str("IMAP_USER", "")
IMAP_PASSWORD = env_str("IMAP_PASSWORD", "")
IMAP_CA_FILE = env_str("IMAP_CA_FILE", "")  # a private CA's certificate; default: the system's
IMAP_FOLDER = env_str("IMAP_FOLDER", "INBOX")
IMAP_PROCESSED_FOLDER = env_str("IMAP_PROCESSED_FOLDER", "Processed")
INBOUND_EMAIL_SECRET = env_str("INBOUND_EMAIL_SECRET", "")
INBOUND_EMAIL_MAX_BYTES = env_int("INBOUND_EMAIL_MAX_BYTES", 10 * 1024 * 1024)
# Mobile numbers typed without a country code are read in this region (ISO 3166 code).
PHONE_REGION = env_str("PHONE_REGION", "US")
# Team members' names and numbers are their own agency commander's; coordinators see (and keep)
# them only when this is on. Officials and other agencies always see counts.
ROSTER_NAMES_TO_COORDINATORS = env_bool("ROSTER_NAMES_TO_COORDINATORS", False)
AGENCY_VERIFY_EVERY_DAYS = env_int("AGENCY_VERIFY_EVERY_DAYS", 365)
AGENCY_VERIFY_REMIND_DAYS = env_int("AGENCY_VERIFY_REMIND_DAYS", 30)

# Security. Scripts and styles come only from our own origin: no inline script anywhere.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:", *MAP_TILES_ORIGINS],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_ENGINE = "readiness.sessions"  # Django's database sessions, read by a compiled query
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
if env_bool("BEHIND_TLS_PROXY", PRODUCTION):
    # Behind a TLS-terminating proxy (nginx, a load balancer) that sets this header and appends
    # the client's address to X-Forwarded-For (rate limits and the audit trail use it).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    ALLAUTH_TRUSTED_PROXY_COUNT = 1

# The address people use to reach the app, for links in emails sent by workers (no request).
# In development it follows the address `make run` serves on (HOST and PORT), unless set.
_DEV_HOST = env_str("HOST", "127.0.0.1")
_DEV_HOST = "127.0.0.1" if _DEV_HOST in ("0.0.0.0", "::", "") else _DEV_HOST  # noqa: S104
_DEV_SITE = f"http://{_DEV_HOST}:{env_str('PORT', '8000')}"
SITE_URL = env_str("SITE_URL", "" if PRODUCTION else _DEV_SITE).rstrip("/")
if PRODUCTION and not SITE_URL.startswith(("https://", "http://")):
    # Workers have no request to take the address from: emails would carry broken links.
    raise ImproperlyConfigured(
        "SITE_URL must be set (e.g. https://readiness.example) in production"
    )

# Travel estimate for polls: great-circle distance x road factor / average emergency speed.
# Road factor 1.25: road distance over straight-line distance is about 1.2-1.4 for US road
# networks; 1.25 suits Illinois's grid. 90 km/h (56 mph): a convoy under lights mixes interstate
# and arterial driving. Both are estimates a commander corrects in their reply.
TRAVEL_ROAD_FACTOR = float(env_str("TRAVEL_ROAD_FACTOR", "1.25"))
TRAVEL_SPEED_KMH = float(env_str("TRAVEL_SPEED_KMH", "90"))
# Replies: a team's stated travel time is flagged for the coordinator (not refused) when it is
# under this share of the estimate and at least this many minutes shorter.
REPLY_TRAVEL_FLAG_RATIO = float(env_str("REPLY_TRAVEL_FLAG_RATIO", "0.5"))
REPLY_TRAVEL_FLAG_MIN_MINUTES = env_int("REPLY_TRAVEL_FLAG_MIN_MINUTES", 10)
# The optional digest of new answers to a poll's sender: at most one email this often.
REPLY_DIGEST_MINUTES = env_int("REPLY_DIGEST_MINUTES", 15)
# Answers' confirmation emails: a worker claims this many at a time, for this many seconds (a
# claim that lapses, its worker dead, is taken again: longer than the task's time limit, 120 s),
# and tries each at most this many times.
CONFIRMATION_BATCH = env_int("CONFIRMATION_BATCH", 100)
CONFIRMATION_LEASE_SECONDS = max(env_int("CONFIRMATION_LEASE_SECONDS", 300), 150)
CONFIRMATION_MAX_ATTEMPTS = env_int("CONFIRMATION_MAX_ATTEMPTS", 5)
# Unknown reply links: at most this many attempts per client address per window (seconds).
REPLY_LINK_RATE_LIMIT = env_int("REPLY_LINK_RATE_LIMIT", 20)
REPLY_LINK_RATE_WINDOW = env_int("REPLY_LINK_RATE_WINDOW", 600)
# Destinations offered when composing a poll (name, latitude, longitude).
POLL_DESTINATIONS = [
    ("Chicago (City Hall)", 41.8837, -87.6319),
    ("Springfield (State Capitol)", 39.7983, -89.6544),
    ("Rockford", 42.2711, -89.0940),
    ("Peoria", 40.6936, -89.5890),
    ("Champaign-Urbana", 40.1106, -88.2073),
]

# The REST API (/api/v1/): sessions for the browser, tokens for integrations; the permission
# predicates of readiness.permissions through RolePermission; one error body
# (readiness.api.errors).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Tokens first: their WWW-Authenticate header makes a missing credential a 401.
        "readiness.api.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["readiness.api.auth.RolePermission"],
    "DEFAULT_PAGINATION_CLASS": "readiness.api.pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env_str("API_THROTTLE_USER", "1200/minute")},
    "EXCEPTION_HANDLER": "readiness.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "readiness.api.schema.AutoSchema",
    "DATETIME_FORMAT": "iso-8601",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Wrong API tokens: at most this many per client address per window (seconds).
API_TOKEN_RATE_LIMIT = env_int("API_TOKEN_RATE_LIMIT", 20)
API_TOKEN_RATE_WINDOW = env_int("API_TOKEN_RATE_WINDOW", 600)
SPECTACULAR_SETTINGS = {
    "TITLE": "Readiness API",
    "DESCRIPTION": (
        "The registry of agencies and special teams, availability polls, invitations, agencies' "
        "answers and the readiness figures, for emergency operations centres and CAD systems.\n\n"
        "Authenticate with `Authorization: Bearer <key>` using a token a coordinator issues on "
        "the API tokens page (each token has a role, and an agency for a commander's), or with "
        "a signed-in browser session (send the CSRF token with writes). Permissions are the "
        "pages' own. Lists are paged (`page`, `page_size` up to 500) and ordered with "
        "`ordering` (prefix `-` to reverse). Every error has one body: `status`, `code`, "
        "`detail` and, for invalid input, `errors` per field."
    ),
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": r"/api/v1",  # tags by resource: agencies, polls, replies...
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "PollStateEnum": "surveys.models.Poll.State",
        "InvitationStateEnum": "surveys.models.Invitation.State",
        "ContactRoleEnum": "agencies.models.Contact.Role",
        "UserRoleEnum": "readiness.models.User.Role",
        "AgencyKindEnum": "agencies.models.Agency.Kind",
    },
}

# Registry import: the largest CSV the upload page accepts.
REGISTRY_IMPORT_MAX_BYTES = env_int("REGISTRY_IMPORT_MAX_BYTES", 20 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# One handler for everything (Django's own "django" handlers are replaced, so no line is logged
# twice), and no secret link in any line (readiness.log_filters).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "secrets": {"()": "readiness.log_filters.MaskSecrets"},
        "one_line_refusals": {"()": "readiness.log_filters.OneLineRefusals"},
    },
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["one_line_refusals", "secrets"],
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "INFO"},
    },
}

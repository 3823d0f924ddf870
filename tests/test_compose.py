"""docker-compose.yml and the Dockerfile, checked by reading them: Docker does not run here.

The last tests tie the compose file to readiness/settings.py, so a renamed or removed setting
shows up here instead of as a container that silently ignores its environment.
"""

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from readiness import settings as settings_module

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_PATH = ROOT / "docker-compose.yml"
DOCKERFILE_PATH = ROOT / "Dockerfile"
SETTINGS_PATH = ROOT / "readiness" / "settings.py"

SERVICES = ("postgres", "redis", "web", "worker", "beat", "mailcatcher")
APP_SERVICES = ("web", "worker", "beat")
# Beat serves no HTTP and answers no ping: it turns off the healthcheck it inherits from the image.
HEALTHCHECKED = ("postgres", "redis", "web", "worker", "mailcatcher")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_PATH.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def command_text(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def healthcheck_text(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


def settings_env_names() -> set[str]:
    """Every environment variable readiness/settings.py reads, by name."""
    source = SETTINGS_PATH.read_text()
    pattern = r'(?:env_\w+|os\.environ\.get|os\.getenv)\(\s*"([A-Z][A-Z0-9_]*)"'
    return set(re.findall(pattern, source))


def test_all_services_exist(services):
    assert set(SERVICES) <= set(services)


@pytest.mark.parametrize("name", HEALTHCHECKED)
def test_service_has_healthcheck(services, name):
    healthcheck = services[name].get("healthcheck")
    assert healthcheck, f"{name} has no healthcheck"
    assert not healthcheck.get("disable"), f"{name} disables its healthcheck"
    assert healthcheck_text(services[name]).strip()


def test_beat_turns_off_the_inherited_http_healthcheck(services):
    # Without this, beat would inherit the image's /healthz check and always be unhealthy.
    beat = services["beat"]
    assert beat["healthcheck"] == {"disable": True}
    assert beat.get("restart") in ("unless-stopped", "always", "on-failure")


def test_backing_service_healthchecks(services):
    assert "pg_isready" in healthcheck_text(services["postgres"])
    assert "redis-cli ping" in healthcheck_text(services["redis"])
    assert "readyz" in healthcheck_text(services["mailcatcher"])
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["mailcatcher"]["image"].startswith("axllent/mailpit")


def test_postgres_keeps_its_data_in_a_volume(compose, services):
    volumes = services["postgres"]["volumes"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in volumes)
    named = volumes[0].split(":", 1)[0]
    assert named in (compose.get("volumes") or {})


def test_app_services_share_one_image(services):
    images = {services[name].get("image") for name in APP_SERVICES}
    builds = {str(services[name].get("build")) for name in APP_SERVICES}
    assert all(services[name].get("build") or services[name].get("image") for name in APP_SERVICES)
    assert len(images) == 1 and len(builds) == 1, "web, worker and beat must run the same image"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_point_at_postgres_and_redis(services, name):
    env = environment(services[name])
    database = urlsplit(env["DATABASE_URL"])
    assert database.scheme in ("postgres", "postgresql")
    assert database.hostname == "postgres"
    user, password = database.username, database.password
    postgres_env = environment(services["postgres"])
    assert user == postgres_env["POSTGRES_USER"]
    assert password == postgres_env["POSTGRES_PASSWORD"]
    assert database.path.lstrip("/") == postgres_env["POSTGRES_DB"]

    redis = urlsplit(env["REDIS_URL"])
    assert redis.scheme == "redis"
    assert redis.hostname == "redis"

    assert env["DJANGO_ENV"] == "production"
    assert env["EMAIL_HOST"] == "mailcatcher"
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:?"), "SECRET_KEY must come from .env"


def test_allowed_hosts_include_localhost_for_the_healthcheck(services):
    # The healthcheck sends Host: localhost.
    for name in APP_SERVICES:
        hosts = environment(services[name])["ALLOWED_HOSTS"].split(",")
        assert "localhost" in [h.strip() for h in hosts]


@pytest.mark.parametrize("name", ("web", "worker"))
def test_depends_on_healthy_postgres_and_redis(services, name):
    depends = services[name]["depends_on"]
    for backing in ("postgres", "redis"):
        assert depends[backing]["condition"] == "service_healthy"


def test_web_migrates_then_serves_on_8000(services):
    web = services["web"]
    command = command_text(web)
    assert "manage.py migrate --noinput" in command
    assert "gunicorn readiness.wsgi:application" in command
    assert command.index("migrate") < command.index("gunicorn")
    assert "--bind 0.0.0.0:8000" in command
    assert "8000:8000" in [str(port) for port in web["ports"]]
    check = healthcheck_text(web)
    assert "/healthz" in check
    assert "X-Forwarded-Proto" in check
    assert "'Host': 'localhost'" in check


def test_worker_and_beat_commands(services):
    assert "celery -A readiness worker" in command_text(services["worker"])
    assert "celery -A readiness inspect ping" in healthcheck_text(services["worker"])
    assert "celery -A readiness beat" in command_text(services["beat"])


def test_mailcatcher_exposes_web_ui(services):
    ports = [str(port) for port in services["mailcatcher"]["ports"]]
    assert any(port.split(":")[-1] == "8025" for port in ports)


def test_app_smtp_points_at_mailcatcher_port(services):
    env = environment(services["web"])
    assert env["EMAIL_PORT"] == "1025"


def test_dockerfile():
    text = DOCKERFILE_PATH.read_text()
    instructions = [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert any(line.startswith("FROM python:3.12-slim") for line in instructions)
    assert "HEALTHCHECK" in text and "/healthz" in text
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users, "the image must switch to a non-root user"
    assert users[-1] not in ("root", "0")
    assert "pip install ." in text
    assert "collectstatic --noinput" in text
    assert "DJANGO_ENV=production" in text
    assert "EXPOSE 8000" in text
    # The last top-level CMD (the HEALTHCHECK's own CMD sits on an indented continuation line).
    cmd = [line for line in text.splitlines() if line.startswith("CMD ")][-1]
    assert "gunicorn" in cmd and "readiness.wsgi:application" in cmd


def test_dockerignore_keeps_local_state_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", ".git", "db.sqlite3", "staticfiles"):
        assert entry in ignored


def test_compose_sets_only_variables_settings_reads(services):
    read = settings_env_names()
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"} <= read, "settings parser is stale"
    for name in APP_SERVICES:
        unknown = set(environment(services[name])) - read
        assert not unknown, f"{name} sets variables settings.py never reads: {sorted(unknown)}"


def test_compose_values_parse_with_the_settings_helpers(services, monkeypatch):
    """Booleans and integers in the compose file are ones the settings helpers accept."""
    source = SETTINGS_PATH.read_text()
    bools = set(re.findall(r'env_bool\(\s*"(\w+)"', source))
    ints = set(re.findall(r'env_int\(\s*"(\w+)"', source))
    for name, value in environment(services["web"]).items():
        monkeypatch.setenv(name, value)
        if name in bools:
            assert settings_module.env_bool(name, True) in (True, False)
        if name in ints:
            assert isinstance(settings_module.env_int(name, -1), int)
    env = environment(services["web"])
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        monkeypatch.setenv(name, env[name])
        assert settings_module.env_bool(name, True) is False

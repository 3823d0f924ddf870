# Readiness: one image for the web process (gunicorn), the Celery worker and Celery beat.
# docker-compose.yml runs all three from this image; see it for the environment they need.
FROM python:3.12-slim

# PYTHONPATH: import the project from /app, not from site-packages, because settings find
# templates/ and static/ next to the readiness package (BASE_DIR), which holds only for the source tree.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_ENV=production \
    PYTHONPATH=/app

WORKDIR /app

# The whole source tree: the packages plus manage.py, templates/ and static/ (.dockerignore keeps
# out the virtualenv, the SQLite file, caches and collected static files).
COPY . /app

# Installs the dependencies from [project.dependencies] in pyproject.toml (and the packages).
RUN pip install . \
    && rm -rf /app/build /app/*.egg-info

RUN useradd --create-home --uid 1000 --user-group readiness \
    && chown -R readiness:readiness /app
USER readiness

# Production settings refuse to start without SECRET_KEY, ALLOWED_HOSTS, EMAIL_HOST and REDIS_URL; these throwaway values
# exist only for this build step and are not kept in the image.
RUN SECRET_KEY=collectstatic-only-not-a-secret ALLOWED_HOSTS=localhost EMAIL_HOST=localhost \
    REDIS_URL=redis://localhost:6379/0 SITE_URL=https://localhost \
    python manage.py collectstatic --noinput

EXPOSE 8000

# /healthz answers 200 when the database does. The request says it came through the TLS proxy
# (X-Forwarded-Proto: https), so SECURE_SSL_REDIRECT does not redirect it, and uses Host: localhost,
# so ALLOWED_HOSTS must include localhost (docker-compose.yml sets it).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as r; r.urlopen(r.Request('http://127.0.0.1:8000/healthz', headers={'Host': 'localhost', 'X-Forwarded-Proto': 'https'}), timeout=4)"]

CMD ["gunicorn", "readiness.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]

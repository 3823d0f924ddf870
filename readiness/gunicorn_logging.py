"""gunicorn's access log, with the secret part of reply and account links masked (see
readiness.log_filters). Loaded by gunicorn.conf.py, so every gunicorn started from the project
directory (the Dockerfile, docker-compose, the benches) uses it."""

from gunicorn.glogging import Logger

from .log_filters import MaskSecrets, mask_secrets


class MaskingLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        # The error log names the request too ("Error handling request /r/...").
        for handler in self.error_log.handlers:
            handler.addFilter(MaskSecrets())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {
            key: mask_secrets(value) if isinstance(value, str) else value
            for key, value in atoms.items()
        }

# gunicorn reads this file from the directory it starts in (the project's, in the image and in
# docker-compose). Command-line options still win for everything else.
logger_class = "readiness.gunicorn_logging.MaskingLogger"

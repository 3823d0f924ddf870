# gunicorn reads this file from the directory it starts in (the project's, in the image and in
# docker-compose). Command-line options still win for everything else.
logger_class = "readiness.gunicorn_logging.MaskingLogger"


def post_worker_init(worker):
    """Once a worker has loaded the app, its objects (Django's, the settings, the URL
    patterns: most of what a worker holds) are set aside from Python's cyclic garbage
    collector, which would otherwise walk them all again at each full collection. They live as
    long as the worker anyway. In process, a text's answer spent 0.14 ms in collections with
    them, 0.07 ms without."""
    import gc

    gc.freeze()

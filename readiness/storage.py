"""Static files' storages whose URLs are worked out once per name and process.

Every page names the same few files ({% static %} in base.html: the stylesheet, the scripts,
the icon), and each name's URL cost about 7 µs (quoting, joining, and in production the
manifest's lookup): a tenth of rendering the base page, on every page a member or commander
opens. A name's URL does not change while the process runs (the manifest is read at start)."""

from django.contrib.staticfiles.storage import StaticFilesStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage


class _KnownUrls:
    def url(self, name, *args, **kwargs):
        if args or kwargs:  # force=True (collectstatic's own use): as it is
            return super().url(name, *args, **kwargs)
        known = self.__dict__.setdefault("_known_urls", {})
        url = known.get(name)
        if url is None:
            url = known[name] = super().url(name)
        return url


class DevelopmentStaticStorage(_KnownUrls, StaticFilesStorage):
    pass


class ProductionStaticStorage(_KnownUrls, CompressedManifestStaticFilesStorage):
    pass

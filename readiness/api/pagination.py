"""Pages of results: `page` and `page_size` (at most 500)."""

from rest_framework.pagination import PageNumberPagination

# Pages ------------------------------------------------------------------------------------------


class Pagination(PageNumberPagination):
    """?page=N&page_size=M (at most 500); `count`, `next` and `previous` links with every page."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

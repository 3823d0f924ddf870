from django import template

from ..phones import shown

register = template.Library()


@register.filter
def mobile(e164: str) -> str:
    """+13125550142 as people read it: (312) 555-0142 at home, +44 7911 123456 abroad."""
    return shown(e164)

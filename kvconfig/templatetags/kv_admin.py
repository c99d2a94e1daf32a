"""Template tags for the admin's KV section (the sidebar on every admin page)."""

from django import template

from kvconfig.namespaces import all_namespaces

register = template.Library()


@register.simple_tag
def kv_namespaces() -> list:
    """Every declared namespace, by name."""
    return list(all_namespaces())

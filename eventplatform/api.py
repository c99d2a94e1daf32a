"""The REST API (django-ninja) with its OpenAPI docs at ``/api/docs``.

Each module owns a router in its ``api.py``; this file only mounts them.
"""

from ninja import NinjaAPI

from .auth import api_auth

api = NinjaAPI(
    title="Event platform",
    version="1.0",
    description="Sites, installed-apps projection, contacts imports and KV configuration.",
    urls_namespace="api",
)

api.add_router("/sites", "sites.api.router", tags=["sites"])
api.add_router("/installed-apps", "sites.projection_api.router", tags=["installed apps"])
api.add_router("/contacts", "contacts.api.router", tags=["contacts"])
api.add_router("/kv", "kvconfig.api.router", tags=["kv"])


@api.get("/me", auth=api_auth, tags=["auth"], summary="Who the request is authenticated as")
def me(request) -> dict:
    """Lets a client check its token or session before doing real work."""
    return {"username": request.auth.username}

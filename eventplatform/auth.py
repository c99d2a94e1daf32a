"""API authentication: ``Authorization: Bearer <token>`` or a Django session (with CSRF).

Tokens are looked up by their SHA-256 and the answer is kept in this process's memory for
``API_TOKEN_CACHE_SECONDS`` (10 s), so the read API's hot path costs a dictionary look-up
rather than a query per request. A change to a user or a token in this process clears the
cache at once; other processes see it within that TTL (say so when revoking a token).
``last_used_at`` is written at most once a minute per token and process.

A read-only token is refused every method but GET, HEAD and OPTIONS with 403.
"""

import time
from dataclasses import dataclass

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import AuthorizationError
from ninja.security import HttpBearer, SessionAuth

from .models import ApiToken, hash_token


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' lockout check for every login made through a request (the login page,
    the admin's). A login without a request (a shell, a test client's ``login()``) is no
    attack surface, so it passes on to the next backend instead of failing."""

    def authenticate(self, request=None, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LAST_USED_WRITE_INTERVAL_SECONDS = 60


@dataclass(slots=True)
class _CachedToken:
    token_id: int
    user: object | None  # None: no active user has this token (cached refusals too)
    read_only: bool
    expires_at: float
    last_used_written_at: float


_tokens: dict[str, _CachedToken] = {}


def clear_token_cache(**_signal_kwargs) -> None:
    """Forget every cached token (a user or a token changed)."""
    _tokens.clear()


def _cache_seconds() -> float:
    return float(getattr(settings, "API_TOKEN_CACHE_SECONDS", 10))


def _load(token_hash: str, now: float) -> _CachedToken:
    row = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=token_hash, user__is_active=True)
        .first()
    )
    entry = _CachedToken(
        token_id=row.pk if row else 0,
        user=row.user if row else None,
        read_only=row.read_only if row else False,
        expires_at=now + _cache_seconds(),
        last_used_written_at=0.0,
    )
    # A bounded cache: a flood of forged tokens must not grow memory without limit.
    if len(_tokens) >= 10_000:
        _tokens.clear()
    _tokens[token_hash] = entry
    return entry


def _touch(entry: _CachedToken, now: float) -> None:
    if now - entry.last_used_written_at >= LAST_USED_WRITE_INTERVAL_SECONDS:
        entry.last_used_written_at = now
        ApiToken.objects.filter(pk=entry.token_id).update(last_used_at=timezone.now())


def _entry_for(token: str, now: float) -> _CachedToken:
    token_hash = hash_token(token)
    entry = _tokens.get(token_hash)
    if entry is None or entry.expires_at <= now:
        entry = _load(token_hash, now)
    return entry


def user_for_token(token: str):
    """The active user ``token`` belongs to, or None: for a reader (a websocket), which a
    read-only token may be too."""
    now = time.monotonic()
    entry = _entry_for(token, now)
    if entry.user is not None:
        _touch(entry, now)
    return entry.user


class BearerToken(HttpBearer):
    """Tokens come from ``manage.py create_api_token [--read-only]``."""

    def authenticate(self, request: HttpRequest, token: str):
        now = time.monotonic()
        entry = _entry_for(token, now)
        if entry.user is None:
            return None
        if entry.read_only and request.method not in SAFE_METHODS:
            raise AuthorizationError(403, "this token is read-only: it may not write")
        _touch(entry, now)
        request._token_read_only = entry.read_only
        request.user = entry.user
        return entry.user


def token_is_read_only(request: HttpRequest) -> bool:
    """Whether the request was authenticated by a read-only token."""
    return getattr(request, "_token_read_only", False)


class SessionOrNothing(SessionAuth):
    """Django's session; a request without a logged-in session is *unauthenticated* (401),
    not a CSRF failure (403): CSRF is checked only for a session that is logged in."""

    def _get_key(self, request: HttpRequest) -> str | None:
        if not request.user.is_authenticated:
            return None
        return super()._get_key(request)


#: The API's default (``NinjaAPI(auth=api_auth)``): a bearer token, else a session.
api_auth = [BearerToken(), SessionOrNothing()]

post_save.connect(clear_token_cache, sender=ApiToken, dispatch_uid="api-token-saved")
post_delete.connect(clear_token_cache, sender=ApiToken, dispatch_uid="api-token-deleted")
post_save.connect(clear_token_cache, sender=get_user_model(), dispatch_uid="api-user-saved")
post_delete.connect(clear_token_cache, sender=get_user_model(), dispatch_uid="api-user-deleted")
# A permission granted to or taken from a user must not wait for the TTL in this process.
m2m_changed.connect(
    clear_token_cache,
    sender=get_user_model().user_permissions.through,
    dispatch_uid="api-user-permissions",
)
m2m_changed.connect(
    clear_token_cache, sender=get_user_model().groups.through, dispatch_uid="api-user-groups"
)

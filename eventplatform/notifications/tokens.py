"""Channel tokens: a browser may only listen to a channel the server issued to its user.

A token is ``django.core.signing`` output over the user id and a random nonce, so it cannot
be forged, names exactly one user, and expires after ``NOTIFICATIONS_CHANNEL_MAX_AGE``
seconds. The token itself is the channel: services notify it, the websocket subscribes to it.
"""

import hashlib
import secrets

from django.conf import settings
from django.core import signing

SALT = "eventplatform.notifications.channel"
DEFAULT_MAX_AGE = 12 * 3600


class ChannelRefused(Exception):
    """The token is missing, forged, expired or issued to someone else."""


def issue_channel(*, user_id: int) -> str:
    """A fresh channel token for ``user_id``."""
    return signing.dumps({"u": user_id, "n": secrets.token_urlsafe(8)}, salt=SALT)


def verify_channel(*, token: str | None, user_id: int | None) -> str:
    """Return ``token`` if it is valid and belongs to ``user_id``; else raise ChannelRefused."""
    if not token:
        raise ChannelRefused("a notification channel is required")
    if user_id is None:
        raise ChannelRefused("log in to use a notification channel")
    max_age = getattr(settings, "NOTIFICATIONS_CHANNEL_MAX_AGE", DEFAULT_MAX_AGE)
    try:
        payload = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise ChannelRefused("the notification channel has expired; reload the page") from None
    except signing.BadSignature:
        raise ChannelRefused("the notification channel is not one this server issued") from None
    if not isinstance(payload, dict) or payload.get("u") != user_id:
        raise ChannelRefused("the notification channel belongs to another user")
    return token


def channel_key(channel: str) -> str:
    """A short, safe name for a channel (Redis keys, Channels group names)."""
    return hashlib.sha256(channel.encode()).hexdigest()[:32]


def group_name(channel: str) -> str:
    """The Channels group whose members are the sockets listening to ``channel``."""
    return f"notifications.{channel_key(channel)}"

"""API authentication: a Django session (with CSRF) or ``Authorization: Bearer <token>``."""

from django.utils import timezone
from ninja.security import HttpBearer, django_auth

from .models import ApiToken, hash_token


class BearerToken(HttpBearer):
    """Looks the token up by its hash; tokens come from ``manage.py create_api_token``."""

    def authenticate(self, request, token: str):
        row = (
            ApiToken.objects.select_related("user")
            .filter(token_hash=hash_token(token), user__is_active=True)
            .first()
        )
        if row is None:
            return None
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
        request.user = row.user
        return row.user


#: Use as ``auth=api_auth`` on any endpoint that needs a user.
api_auth = [BearerToken(), django_auth]

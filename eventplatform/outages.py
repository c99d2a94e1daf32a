"""Requests that meet an outage get a JSON 503 with ``Retry-After``, never an HTML 500.

A database, Redis or broker that cannot be reached is not the client's fault and not a bug:
the same request will work once it is back. :class:`OutageMiddleware` answers so for every
view; :func:`register` does the same inside the API, whose own handler would otherwise turn
the error into a 500 first.
"""

import logging

import redis
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from kafka.errors import KafkaError

from .kafka.retry import is_outage

logger = logging.getLogger("eventplatform.outages")

RETRY_AFTER_SECONDS = 5


class ServiceUnavailable(Exception):
    """A service cannot do its work now because a dependency is down; nothing was changed."""


def _dependency(error: BaseException) -> str:
    if isinstance(error, OperationalError | InterfaceError):
        return "database"
    if isinstance(error, redis.exceptions.RedisError):
        return "redis"
    if isinstance(error, KafkaError):
        return "kafka"
    return "a dependency"


def is_request_outage(error: BaseException) -> bool:
    """Whether ``error`` should be answered 503 rather than treated as a bug."""
    if isinstance(error, ServiceUnavailable):
        return True
    return is_outage(error) or isinstance(error, redis.exceptions.ConnectionError)


def outage_response(error: BaseException) -> JsonResponse:
    dependency = _dependency(error.__cause__ or error)
    logger.warning(
        "request refused during an outage",
        extra={"dependency": dependency, "error": repr(error)[:300]},
    )
    detail = str(error) if isinstance(error, ServiceUnavailable) else f"{dependency} unavailable"
    response = JsonResponse(
        {"detail": f"{detail}; try again shortly", "dependency": dependency}, status=503
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class OutageMiddleware:
    """Turns an outage raised by any view into the JSON 503."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return outage_response(exception) if is_request_outage(exception) else None


OUTAGE_ERRORS = (
    ServiceUnavailable,
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def register(api) -> None:
    """Answer outages inside a django-ninja API with the same JSON 503."""
    for error_class in OUTAGE_ERRORS:
        api.add_exception_handler(error_class, lambda request, error: outage_response(error))

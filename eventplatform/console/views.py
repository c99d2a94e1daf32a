"""The console page and its DLQ actions; staff-only through the admin's ``admin_view``, the
actions also needing the permission to write their audit.

The page is a shell that the websocket fills; the actions take a JSON body
``{"refs": ["partition:offset", ...]}`` or ``{"all": true}`` and answer JSON, errors
included (400 for a request that cannot be done, 503 when the broker is unreachable).
"""

import json

from django.contrib import admin
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST
from kafka.errors import KafkaError

from eventplatform.kafka import dlq

from .live import sampler

ACTIONS = {"replay": dlq.replay, "discard": dlq.discard}
#: Replaying or discarding writes the audit (a ``DeadLetterAction``): seeing the console is
#: for any staff user, acting on its dead letters only for those allowed to write it.
ACT_ON_DEAD_LETTERS = "eventplatform.add_deadletteraction"


def console(request):
    context = {
        **admin.site.each_context(request),
        "title": "Operations console",
        "subtitle": None,
    }
    return TemplateResponse(request, "admin/console.html", context)


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"detail": message}, status=status)


def _selection(request) -> tuple[list[str], bool]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise dlq.DeadLetterError("the body must be JSON") from None
    if not isinstance(body, dict):
        raise dlq.DeadLetterError('the body must be a JSON object with "refs" or "all"')
    refs, every = body.get("refs") or [], body.get("all") is True
    if not isinstance(refs, list) or not all(isinstance(ref, str) for ref in refs):
        raise dlq.DeadLetterError('"refs" must be a list of "partition:offset" strings')
    if bool(refs) == every:
        raise dlq.DeadLetterError('name the records in "refs" or send "all": true, not both')
    return refs, every


@require_POST
def dead_letter_action(request, topic: str, action: str):
    """Replay or discard records of one DLQ; the audit names the signed-in user."""
    if action not in ACTIONS:
        return _error(f"unknown action {action!r}: replay or discard", 404)
    if not request.user.has_perm(ACT_ON_DEAD_LETTERS):
        return _error(
            f"{action} needs the permission {ACT_ON_DEAD_LETTERS!r}, which an administrator"
            " can grant on your user or one of your groups",
            403,
        )
    try:
        refs, every = _selection(request)
        dlq_topic = dlq.resolve_dlq(topic)
        letters = dlq.pending(dlq_topic) if every else dlq.find(dlq_topic, refs)
        count = ACTIONS[action](letters, actor=request.user.get_username())
    except dlq.DeadLetterError as error:
        return _error(str(error), 400)
    except KafkaError as error:
        return _error(f"the broker did not answer: {type(error).__name__}: {error}", 503)
    sampler.refresh_soon()
    return JsonResponse({"action": action, "dlq": dlq_topic, "count": count})

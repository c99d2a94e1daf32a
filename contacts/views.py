"""Server-rendered pages: the upload page, one import's page, and the contacts list."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from eventplatform.errors import NotFound
from eventplatform.notifications.tokens import issue_channel

from .selectors import contacts_of, import_of, import_status, imports_of
from .upload import max_upload_bytes

RECENT_IMPORTS = 10


def _render_import_page(request, *, channel: str, job=None):
    recent = list(imports_of(owner_id=request.user.pk)[:RECENT_IMPORTS])
    for item in recent:
        item.status = import_status(item)
    context = {
        "channel": channel,
        "max_bytes": max_upload_bytes(),
        "job": job,
        "recent_imports": recent,
    }
    return render(request, "contacts/import.html", context)


@login_required
@ensure_csrf_cookie
def import_page(request):
    return _render_import_page(request, channel=issue_channel(user_id=request.user.pk))


@login_required
@ensure_csrf_cookie
def import_job_page(request, job_id):
    """One import: re-attaches to it while it runs (its own channel), or shows how it ended."""
    try:
        job = import_of(owner_id=request.user.pk, job_id=job_id)
    except NotFound:
        raise Http404("no such import") from None
    return _render_import_page(request, channel=job.channel, job=job)


@login_required
def contact_list(request):
    search = request.GET.get("q", "")
    page = Paginator(contacts_of(owner_id=request.user.pk, search=search), 50).get_page(
        request.GET.get("page")
    )
    # A NUL matches no contact (the selector says so); shown as browsers show it.
    shown = search.replace("\x00", "\ufffd")
    return render(request, "contacts/list.html", {"page": page, "search": shown})

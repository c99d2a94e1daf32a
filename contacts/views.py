"""Server-rendered pages: the upload page and the contacts list."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from eventplatform.notifications.tokens import issue_channel

from .selectors import contacts_of
from .services import max_upload_bytes


@login_required
@ensure_csrf_cookie
def import_page(request):
    return render(
        request,
        "contacts/import.html",
        {"channel": issue_channel(user_id=request.user.pk), "max_bytes": max_upload_bytes()},
    )


@login_required
def contact_list(request):
    search = request.GET.get("q", "")
    page = Paginator(contacts_of(owner_id=request.user.pk, search=search), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "contacts/list.html", {"page": page, "search": search})

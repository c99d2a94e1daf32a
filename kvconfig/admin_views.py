"""KV editor pages inside the Django admin (wrapped in ``admin_view`` by admin_urls)."""

import json
from functools import wraps

from django.conf import settings
from django.contrib import admin, messages
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from . import selectors, services
from .forms import EntryForm, initial_from_value
from .history import key_history
from .namespaces import UnknownNamespace, get_namespace
from .schema import Namespace, thaw
from .store import KVError, KVKeyNotFound, KVNotYetApplied, KVWriteUnconfirmed
from .stores import get_store


def _namespace(name: str) -> Namespace:
    try:
        return get_namespace(name)
    except UnknownNamespace as error:
        raise Http404(str(error)) from None


def page_ready_seconds() -> float:
    """How long a page waits for a store still catching up before it says why it cannot
    be shown (an editor would rather read why than watch a page hang for half a minute)."""
    return float(getattr(settings, "KV_PAGE_READY_TIMEOUT", 5))


def needs_ready_store(view):
    """The namespace's page once its store has caught up; else, after a short wait, a 503
    page saying what holds it up (the broker down, a topic missing)."""

    @wraps(view)
    def wrapped(request, namespace, *args, **kwargs):
        spec = _namespace(namespace)
        try:
            get_store(spec.name).wait_ready(page_ready_seconds())
        except KVError as error:
            response = _render(
                request,
                "kvconfig/unready.html",
                f"{spec.name} is not ready",
                namespace=spec,
                problem=error,
            )
            response.status_code = 503
            response["Retry-After"] = "5"
            return response
        return view(request, namespace, *args, **kwargs)

    return wrapped


def _existing_value(namespace: Namespace, key: str):
    value = selectors.get_entry(namespace=namespace.name, key=key)
    if value is None:
        raise Http404(f"no key {key!r} in namespace {namespace.name!r}")
    return value


def _display(field_value) -> str:
    return ", ".join(field_value) if isinstance(field_value, tuple) else str(field_value)


def _json(value) -> str:
    return json.dumps(thaw(value), ensure_ascii=False, sort_keys=True)


def _render(request, template: str, title: str, **context) -> TemplateResponse:
    return TemplateResponse(
        request, template, {**admin.site.each_context(request), "title": title, **context}
    )


def forbidden(request, permission: str) -> TemplateResponse:
    """The page a staff user without ``permission`` gets instead of the one asked for."""
    response = _render(request, "kvconfig/forbidden.html", "Not allowed", permission=permission)
    response.status_code = 403
    return response


def index(request):
    return _render(
        request,
        "kvconfig/index.html",
        "KV configuration",
        statuses=selectors.namespace_statuses(wait=page_ready_seconds()),
    )


@needs_ready_store
def entries(request, namespace):
    spec = _namespace(namespace)
    search = request.GET.get("q", "")
    rows = [
        {"key": key, "fields": [_display(value.get(f.name)) for f in spec.fields]}
        for key, value in selectors.list_entries(namespace=spec.name, search=search)
    ]
    return _render(
        request,
        "kvconfig/entries.html",
        f"{spec.name}",
        namespace=spec,
        rows=rows,
        search=search,
    )


def _refuse_derived(request, spec: Namespace, key: str | None) -> TemplateResponse:
    response = _render(
        request,
        "kvconfig/derived.html",
        f"{spec.name} is derived",
        namespace=spec,
        key=key,
    )
    response.status_code = 403
    return response


def _edit(request, spec: Namespace, key: str | None):
    if spec.derived_by:
        return _refuse_derived(request, spec, key)
    initial = None if key is None else initial_from_value(spec, key, _existing_value(spec, key))
    form = EntryForm(request.POST or None, initial=initial, namespace=spec, key=key)
    if request.method == "POST" and form.is_valid():
        # Adding never overwrites: an existing key is changed on its own page.
        write = services.set_entry if key is not None else services.add_entry
        try:
            write(
                namespace=spec.name,
                key=form.cleaned_key,
                value=form.cleaned_value,
                editor=request.user.get_username(),
            )
        except services.KVKeyExists as error:
            form.add_error("key", str(error))
        except KVNotYetApplied:
            messages.warning(request, _landed_late(f"Saved {form.cleaned_key} in {spec.name}"))
            return redirect("kvadmin:entries", namespace=spec.name)
        except KVWriteUnconfirmed as error:
            form.add_error(None, f"Not confirmed: {error}")
        except KVError as error:
            form.add_error(None, f"Not saved: {error}")
        else:
            messages.success(request, f"Saved {form.cleaned_key} in {spec.name}.")
            return redirect("kvadmin:entries", namespace=spec.name)
    title = f"Add to {spec.name}" if key is None else f"Change {key} in {spec.name}"
    return _render(request, "kvconfig/edit.html", title, namespace=spec, form=form, key=key)


def _landed_late(done: str) -> str:
    # The broker has the write: saying "not saved" would send the editor to do it again.
    return (
        f"{done}. This server had not caught up with it yet, so the list may show the "
        "previous value for a moment; reload to see it."
    )


@needs_ready_store
def add(request, namespace):
    return _edit(request, _namespace(namespace), None)


@needs_ready_store
def change(request, namespace, key):
    return _edit(request, _namespace(namespace), key)


@needs_ready_store
def delete(request, namespace, key):
    spec = _namespace(namespace)
    if spec.derived_by:
        return _refuse_derived(request, spec, key)
    value = _existing_value(spec, key)
    error = ""
    if request.method == "POST":
        try:
            services.delete_entry(namespace=spec.name, key=key, editor=request.user.get_username())
        except KVKeyNotFound as missing:
            raise Http404(str(missing)) from None
        except KVNotYetApplied:
            messages.warning(request, _landed_late(f"Deleted {key} from {spec.name}"))
            return redirect("kvadmin:entries", namespace=spec.name)
        except KVWriteUnconfirmed as failure:
            error = f"Not confirmed: {failure}"
        except KVError as failure:
            error = f"Not deleted: {failure}"
        else:
            messages.success(request, f"Deleted {key} from {spec.name}.")
            return redirect("kvadmin:entries", namespace=spec.name)
    return _render(
        request,
        "kvconfig/delete.html",
        f"Delete {key} from {spec.name}?",
        namespace=spec,
        key=key,
        value=_json(value),
        error=error,
    )


def history(request, namespace, key):
    spec = _namespace(namespace)
    try:
        spec.validate_key(key)
    except ValueError as error:
        raise Http404(str(error)) from None
    try:
        revisions, error = key_history(namespace=spec.name, key=key), ""
    except KVError as failure:
        revisions, error = [], str(failure)
    return _render(
        request,
        "kvconfig/history.html",
        f"History of {key} in {spec.name}",
        namespace=spec,
        key=key,
        revisions=[(r, r.value if r.problem else _json(r.value)) for r in revisions],
        error=error,
    )

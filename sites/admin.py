"""Admin for sites: every save and delete goes through ``sites.services``, so admin edits
publish events exactly like the API (the admin view's transaction makes a save with its
inlines all-or-nothing). The projection models are not editable here: only the projector
writes them."""

from django.contrib import admin

from . import services
from .models import AppInstallation, Site


class AppInstallationInline(admin.TabularInline):
    model = AppInstallation
    extra = 1
    fields = ["app_id", "settings", "installed_at"]
    readonly_fields = ["installed_at"]


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "version", "updated_at"]
    search_fields = ["name", "owner", "id"]
    readonly_fields = ["id", "version", "created_at", "updated_at"]
    fields = ["id", "name", "owner", "version", "created_at", "updated_at"]
    inlines = [AppInstallationInline]

    def save_model(self, request, obj, form, change):
        if change:
            site = services.update_site(site_id=obj.pk, name=obj.name, owner=obj.owner)
        else:
            site = services.create_site(name=obj.name, owner=obj.owner)
        # The inlines and the admin's redirect use this object: make it the saved row.
        obj.pk, obj.version = site.pk, site.version
        obj.created_at, obj.updated_at = site.created_at, site.updated_at
        obj._state.adding, obj._state.db = False, site._state.db

    def save_formset(self, request, form, formset, change):
        site_id = form.instance.pk
        # The admin's change message reads these lists, which formset.save() would fill.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline in formset.deleted_forms:
            if inline.instance.pk is not None:
                services.uninstall_app(site_id=site_id, app_id=inline.initial["app_id"])
                formset.deleted_objects.append(inline.instance)
        for inline in formset.forms:
            if inline in formset.deleted_forms or not inline.has_changed():
                continue
            existing = inline.instance.pk is not None
            if existing and "app_id" in inline.changed_data:
                # Renaming an install is removing one app and installing another.
                services.uninstall_app(site_id=site_id, app_id=inline.initial["app_id"])
            installed = services.install_app(
                site_id=site_id,
                app_id=inline.cleaned_data["app_id"],
                settings=inline.cleaned_data["settings"],
            )
            if existing:
                formset.changed_objects.append((installed, inline.changed_data))
            else:
                formset.new_objects.append(installed)

    def delete_model(self, request, obj):
        services.delete_site(site_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for site_id in queryset.values_list("pk", flat=True):
            services.delete_site(site_id=site_id)

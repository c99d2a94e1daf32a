"""Admin for sites: every save and delete goes through ``sites.services``, so admin edits
publish events exactly like the API (the admin view's transaction makes a save with its
inlines all-or-nothing). The projection models are not editable here: only the projector
writes them.

The admin asks ``sites.permissions`` like the API: a staff user without the model
permissions sees, changes and deletes only the sites they own, and owns what they add."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect

from eventplatform.errors import LimitExceeded

from . import permissions, services
from .models import AppInstallation, Site


class AppInstallationForm(forms.ModelForm):
    """Checks the settings as the API does, so the form shows what is wrong with them."""

    class Meta:
        model = AppInstallation
        fields = ["app_id", "settings"]

    def clean_settings(self):
        settings = self.cleaned_data["settings"]
        try:
            services.check_settings({} if settings is None else settings)
        except ValidationError as error:
            raise ValidationError(error.message_dict["settings"]) from None
        except LimitExceeded as error:
            raise ValidationError(str(error)) from None
        return settings


class AppInstallationInline(admin.TabularInline):
    model = AppInstallation
    form = AppInstallationForm
    extra = 1
    fields = ["app_id", "settings", "installed_at"]
    readonly_fields = ["installed_at"]


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "version", "updated_at"]
    search_fields = ["name", "owner__username", "id"]
    readonly_fields = ["id", "version", "created_at", "updated_at"]
    fields = ["id", "name", "owner", "version", "created_at", "updated_at"]
    raw_id_fields = ["owner"]
    inlines = [AppInstallationInline]

    def get_queryset(self, request):
        sites = super().get_queryset(request).select_related("owner")
        if self._has_model_permission(request, "view") or self._has_model_permission(
            request, "change"
        ):
            return sites
        return sites.filter(owner=request.user)

    def get_readonly_fields(self, request, obj=None):
        # Only a holder of change_site may hand a site to someone else.
        if self._has_model_permission(request, "change"):
            return self.readonly_fields
        return [*self.readonly_fields, "owner"]

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return request.user.is_active and request.user.is_staff
        return super().has_view_permission(request, obj) or permissions.can_change(
            request.user, obj
        )

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return request.user.is_active and request.user.is_staff
        return permissions.can_change(request.user, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is None:
            # Bulk deletion of a queryset: only with the model permission.
            return self._has_model_permission(request, "delete")
        return permissions.can_delete(request.user, obj)

    def _has_model_permission(self, request, action: str) -> bool:
        return request.user.has_perm(f"metasite.{action}_site")

    def changeform_view(self, request, *args, **kwargs):
        """What the services refuse only while saving (the site is at its limit of apps,
        say) is said on the form's page; the admin's transaction has undone the rest."""
        try:
            return super().changeform_view(request, *args, **kwargs)
        except (ValidationError, LimitExceeded) as error:
            reasons = error.messages if isinstance(error, ValidationError) else [str(error)]
            self.message_user(request, "Not saved: " + "; ".join(reasons), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        if change:
            site = services.update_site(
                site_id=obj.pk, name=obj.name, owner=obj.owner, actor=request.user
            )
        else:
            owner = obj.owner if obj.owner_id else request.user
            site = services.create_site(name=obj.name, owner=owner, actor=request.user)
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
                services.uninstall_app(
                    site_id=site_id, app_id=inline.initial["app_id"], actor=request.user
                )
                formset.deleted_objects.append(inline.instance)
        for inline in formset.forms:
            if inline in formset.deleted_forms or not inline.has_changed():
                continue
            existing = inline.instance.pk is not None
            if existing and "app_id" in inline.changed_data:
                # Renaming an install is removing one app and installing another.
                services.uninstall_app(
                    site_id=site_id, app_id=inline.initial["app_id"], actor=request.user
                )
            installed = services.install_app(
                site_id=site_id,
                app_id=inline.cleaned_data["app_id"],
                settings=inline.cleaned_data["settings"],
                actor=request.user,
            )
            if existing:
                formset.changed_objects.append((installed, inline.changed_data))
            else:
                formset.new_objects.append(installed)

    def delete_model(self, request, obj):
        services.delete_site(site_id=obj.pk, actor=request.user)

    def delete_queryset(self, request, queryset):
        for site_id in queryset.values_list("pk", flat=True):
            services.delete_site(site_id=site_id, actor=request.user)

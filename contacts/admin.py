from django.contrib import admin

from .models import Contact, ImportJob


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "company", "phone", "owner", "updated_at"]
    search_fields = ["email", "name", "company"]
    list_filter = ["owner"]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "owner",
        "original_name",
        "created_at",
        "total_rows",
        "done_batches",
        "total_batches",
        "imported",
        "updated",
        "failed",
        "completed_at",
    ]
    readonly_fields = [f.name for f in ImportJob._meta.fields]
    ordering = ["-created_at"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        # Imports start from an upload (the page or the API), never from a blank form.
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

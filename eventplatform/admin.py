"""Admin for the platform's own tables: the outbox rows the broker refused, to resend, and
the audit of dead-lettered records replayed or discarded."""

from django.contrib import admin, messages

from .models import DeadLetterAction, OutboxEvent
from .outbox import resend


class SetAsideFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("set_aside", "set aside"), ("pending", "pending"), ("sent", "sent")]

    def queryset(self, request, queryset):
        if self.value() == "set_aside":
            return queryset.filter(set_aside_at__isnull=False, sent_at__isnull=True)
        if self.value() == "pending":
            return queryset.filter(set_aside_at__isnull=True, sent_at__isnull=True)
        if self.value() == "sent":
            return queryset.filter(sent_at__isnull=False)
        return queryset


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    """Read-only: rows are written by services and sent by the relay; only resend acts."""

    list_display = ("id", "topic", "key", "created_at", "sent_at", "set_aside_at", "error")
    list_filter = (SetAsideFilter, "topic")
    search_fields = ("key", "error")
    ordering = ("-id",)
    actions = ["resend_rows"]
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Resend the selected set-aside rows", permissions=["change"])
    def resend_rows(self, request, queryset):
        count = resend(row_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{count} row(s) queued again.", messages.SUCCESS)


@admin.register(DeadLetterAction)
class DeadLetterActionAdmin(admin.ModelAdmin):
    """The DLQ audit: written only by replays and discards (console or ``manage.py dlq``)."""

    list_display = ("acted_at", "action", "actor", "dlq_topic", "partition", "offset", "source")
    list_filter = ("action", "dlq_topic")
    search_fields = ("actor", "key", "error", "source")
    ordering = ("-acted_at",)
    readonly_fields = [f.name for f in DeadLetterAction._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

"""Routes the projection models to their own database and its read replica."""

PROJECTIONS = "projections"
PROJECTIONS_REPLICA = "projections_replica"
DEFAULT = "default"

#: The apps whose models are projections: the installed-apps read model
#: (``sites.projection``). A projection is recognised by its app's label, and by nothing
#: else: migrations hand the router historical models, which keep their app label but
#: none of the class attributes a marker would need.
PROJECTION_APP_LABELS = frozenset({"installed_apps"})


def is_projection_app(app_label: str) -> bool:
    """Whether the app labelled ``app_label`` lives on the projections database."""
    return app_label in PROJECTION_APP_LABELS


def is_projection_model(model) -> bool:
    """Whether ``model`` (a class or an instance, real or historical) is a projection."""
    return is_projection_app(model._meta.app_label)


class ProjectionRouter:
    """Projection reads go to the replica, their writes to the primary; the rest on default.

    Projection models are those of the apps in ``PROJECTION_APP_LABELS``. They migrate only
    on ``projections`` (the replica follows it), and nothing else migrates there except
    the stored consumer offsets, which live beside the effects they guard.
    """

    def db_for_read(self, model, **hints):
        return PROJECTIONS_REPLICA if is_projection_model(model) else DEFAULT

    def db_for_write(self, model, **hints):
        return PROJECTIONS if is_projection_model(model) else DEFAULT

    def allow_relation(self, obj1, obj2, **hints):
        return is_projection_model(obj1) == is_projection_model(obj2)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db == PROJECTIONS_REPLICA:
            return False
        if _stores_consumer_offsets(app_label, model_name):
            return db in (DEFAULT, PROJECTIONS)
        return db == (PROJECTIONS if is_projection_app(app_label) else DEFAULT)


def _stores_consumer_offsets(app_label: str, model_name: str | None) -> bool:
    """Whether the model is one whose class declares ``_consumer_offsets = True``.

    Migrations pass historical models, which lack such class attributes, so the router
    looks the model up by name as the code defines it now.
    """
    if model_name is None:
        return False
    from django.apps import apps

    try:
        model = apps.get_model(app_label, model_name)
    except LookupError:
        return False
    return getattr(model, "_consumer_offsets", False)

"""Routes the projection models to their own database and its read replica."""

PROJECTIONS = "projections"
PROJECTIONS_REPLICA = "projections_replica"
DEFAULT = "default"


def is_projection_model(model) -> bool:
    """A model opts into the projections database with a class attribute ``_projection = True``."""
    return getattr(model, "_projection", False)


class ProjectionRouter:
    """Projection reads go to the replica, their writes to the primary; the rest on default.

    Projection models declare a class attribute ``_projection = True``. They migrate only on
    ``projections`` (the replica follows it), and nothing else migrates there.
    """

    def db_for_read(self, model, **hints):
        return PROJECTIONS_REPLICA if is_projection_model(model) else DEFAULT

    def db_for_write(self, model, **hints):
        return PROJECTIONS if is_projection_model(model) else DEFAULT

    def allow_relation(self, obj1, obj2, **hints):
        return is_projection_model(type(obj1)) == is_projection_model(type(obj2))

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        model = _current_model(app_label, model_name) or hints.get("model")
        if db == PROJECTIONS_REPLICA:
            return False
        if model is not None and getattr(model, "_consumer_offsets", False):
            # Stored consumer offsets live beside the effects they guard, on either database.
            return db in (DEFAULT, PROJECTIONS)
        projection = model is not None and is_projection_model(model)
        return db == (PROJECTIONS if projection else DEFAULT)


def _current_model(app_label: str, model_name: str | None):
    """The model class as the code defines it now.

    Migrations pass historical models, which lack class attributes such as ``_projection``,
    so the router looks the real class up by name.
    """
    if model_name is None:
        return None
    from django.apps import apps

    try:
        return apps.get_model(app_label, model_name)
    except LookupError:
        return None

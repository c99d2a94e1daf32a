import pytest
from django.apps import apps as global_apps
from django.db import connections, router
from django.db.migrations.state import ProjectState
from django.db.utils import DatabaseError

from eventplatform.models import ConsumerOffset, OutboxEvent
from eventplatform.routers import ProjectionRouter
from sites.models import Site
from sites.projection.models import InstalledApp


def test_projection_reads_go_to_the_replica_and_writes_to_the_primary():
    rules = ProjectionRouter()
    assert rules.db_for_read(InstalledApp) == "projections_replica"
    assert rules.db_for_write(InstalledApp) == "projections"


def test_the_projection_app_is_recognised_by_its_label():
    assert InstalledApp._meta.app_label == "installed_apps"
    assert router.allow_migrate("projections", "installed_apps")
    assert not router.allow_migrate("default", "installed_apps")
    assert router.allow_migrate("default", "metasite", model_name="site")
    assert not router.allow_migrate("projections", "metasite", model_name="site")
    assert router.db_for_write(Site) == "default"


def test_every_other_model_stays_on_default():
    assert router.db_for_read(OutboxEvent) == "default"
    assert router.db_for_write(OutboxEvent) == "default"


def test_migrations_land_only_where_the_model_lives():
    assert router.allow_migrate("default", "eventplatform", model_name="outboxevent")
    assert not router.allow_migrate("projections", "eventplatform", model_name="outboxevent")
    assert not router.allow_migrate(
        "projections_replica", "eventplatform", model_name="outboxevent"
    )
    # Stored offsets live beside the effects they guard: on either primary, never the replica.
    assert router.allow_migrate("default", "eventplatform", model_name="consumeroffset")
    assert router.allow_migrate("projections", "eventplatform", model_name="consumeroffset")
    assert not router.allow_migrate(
        "projections_replica", "eventplatform", model_name="consumeroffset"
    )


def test_relations_never_cross_databases():
    assert not ProjectionRouter().allow_relation(InstalledApp(), OutboxEvent())
    assert ProjectionRouter().allow_relation(OutboxEvent(), ConsumerOffset())


@pytest.mark.django_db(databases=["projections", "projections_replica"])
def test_the_replica_connection_refuses_writes():
    with (
        pytest.raises(DatabaseError) as refused,
        connections["projections_replica"].cursor() as cursor,
    ):
        cursor.execute("CREATE TABLE refused_write (id integer)")
    assert "read" in str(refused.value).lower()


def test_migrations_route_historical_models_like_the_real_ones():
    """Migrations hand the router historical models, which lack the class markers."""
    historical = ProjectState.from_apps(global_apps).apps
    offsets = historical.get_model("eventplatform", "ConsumerOffset")
    installed = historical.get_model("installed_apps", "InstalledApp")
    for model, expected in ((offsets, {"default", "projections"}), (installed, {"projections"})):
        allowed = {
            db
            for db in ("default", "projections", "projections_replica")
            if router.allow_migrate(
                db, model._meta.app_label, model_name=model._meta.model_name, model=model
            )
        }
        assert allowed == expected, model

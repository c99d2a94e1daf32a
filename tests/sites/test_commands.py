"""The sites commands show their progress, and a user error ends in one line and exit 1."""

import subprocess
import sys

import pytest
from django.contrib.auth.models import User

from sites import services

from ..conftest import ROOT


@pytest.mark.django_db(transaction=True)
def test_publish_sites_counts_the_sites_it_publishes(manage):
    owner = User.objects.create_user("olive")
    for name in ("a", "b", "c"):
        services.create_site(name=name, owner=owner)
    result = manage("publish_sites", "--all", "--chunk-size", "2")
    assert result.stdout.strip() == "published 3 site snapshots to the outbox"
    assert "publishing sites" in result.stderr
    assert "3/3" in result.stderr


def test_publish_sites_without_all_is_one_line_and_exit_1(manage):
    result = manage("publish_sites", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "CommandError: nothing to publish: pass --all"
    assert result.stdout == ""


def test_a_rebuild_without_its_database_is_one_line_and_exit_1(subprocess_env):
    nowhere = "postgres://postgres@127.0.0.1:1/projections"
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "project_installed_apps", "--rebuild"],
        cwd=ROOT,
        env={**subprocess_env, "PROJECTIONS_DATABASE_URL": nowhere},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("CommandError: OperationalError: ")
    assert "port 1 failed" in result.stderr
    assert "Traceback" not in result.stderr

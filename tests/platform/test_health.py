import os
import subprocess
import sys

import pytest

from eventplatform.kafka.shared_admin import close_shared_admin


def test_healthz_answers_while_the_process_is_up(client):
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.django_db(databases="__all__")
def test_readyz_is_200_when_database_redis_and_kafka_answer(client, kafka_broker):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ready"}


@pytest.mark.django_db(databases="__all__")
def test_readyz_is_503_naming_the_part_that_fails(client, kafka_broker, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert set(body["failing"]) == {"redis"}
    assert "ConnectionError" in body["failing"]["redis"]


@pytest.mark.django_db(databases="__all__")
def test_readyz_names_kafka_when_the_broker_is_unreachable(client, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    close_shared_admin()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == {
        "kafka": "ConnectionError: no bootstrap server accepts connections: 127.0.0.1:1"
    }


@pytest.mark.django_db(databases="__all__")
def test_metrics_are_prometheus_text(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert b"eventplatform_outbox_pending 0.0" in response.content


def test_production_settings_refuse_the_development_secret():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={
            "DJANGO_SETTINGS_MODULE": "eventplatform.settings",
            "DEBUG": "false",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


@pytest.mark.django_db(databases="__all__")
def test_readyz_reports_a_process_the_supervisor_sees_failing_and_still_serves(
    client, kafka_broker, settings, tmp_path
):
    import io
    import threading

    from eventplatform.embedded.supervisor import ProcessSpec, Supervisor
    from tests.helpers import wait_until

    settings.PLATFORM_STATUS_FILE = tmp_path / "processes.json"
    supervisor = Supervisor(
        [ProcessSpec("flaky", "python -c 'raise SystemExit(3)'")],
        env=dict(os.environ),
        cwd=tmp_path,
        out=io.StringIO(),
        restart_delay=0.01,
        max_restart_delay=0.05,
        status_path=settings.PLATFORM_STATUS_FILE,
    )
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: client.get("/readyz").json()["status"] == "degraded", timeout=30)
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["degraded"]["flaky"].startswith("failing")
    finally:
        supervisor.request_stop()
        thread.join(30)
    # Once stopped, the supervisor reports nothing failing any more.
    assert client.get("/readyz").json() == {"status": "ready"}

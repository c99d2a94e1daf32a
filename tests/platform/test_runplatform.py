"""``runplatform`` on embedded defaults: no database, broker or Redis configured."""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from eventplatform.kafka.broker import free_port, wait_for_port
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
CONFIGURED = (
    "DATABASE_URL",
    "PROJECTIONS_DATABASE_URL",
    "PROJECTIONS_REPLICA_DATABASE_URL",
    "REDIS_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC_PREFIX",
    "DJANGO_SETTINGS_MODULE",
)


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except OSError:
        return 0, {}


def test_runplatform_boots_on_embedded_defaults_and_stops_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in CONFIGURED}
    env.update(VAR_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1")
    port = free_port()
    log_path = tmp_path / "runplatform.log"
    with open(log_path, "wb") as log:
        platform = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "runplatform",
                "--port",
                str(port),
                "--read-api-port",
                str(free_port()),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = wait_until(
            lambda: _get(f"http://127.0.0.1:{port}/readyz")[0] == 200,
            timeout=180,
            interval=0.5,
            message=f"/readyz never answered 200, see {log_path}",
        )
        assert ready
        output = log_path.read_text()
        assert "embedded broker on 127.0.0.1:" in output
        assert f"http://127.0.0.1:{port}/admin/" in output
        broker_port = int(output.split("embedded broker on 127.0.0.1:")[1].split()[0])
        assert (tmp_path / "var" / "default.sqlite3").exists()

        platform.send_signal(signal.SIGTERM)
        assert platform.wait(timeout=60) == 0, log_path.read_text()[-3000:]
        output = log_path.read_text()
        assert "platform stopped" in output
        assert "did not stop in time" not in output
        assert "exited unexpectedly" not in output
        # The embedded broker went with it.
        assert not wait_for_port("127.0.0.1", broker_port, timeout=0.5)
    finally:
        if platform.poll() is None:
            platform.kill()

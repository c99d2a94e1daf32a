import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from eventplatform.embedded.supervisor import Infrastructure, ProcessSpec, Supervisor, read_procfile
from tests.helpers import wait_until


def _supervisor(
    specs: list[ProcessSpec], tmp_path: Path, **options
) -> tuple[Supervisor, io.StringIO]:
    out = io.StringIO()
    supervisor = Supervisor(
        specs,
        env=dict(os.environ),
        cwd=tmp_path,
        out=out,
        restart_delay=0.01,
        max_restart_delay=0.05,
        status_path=tmp_path / "processes.json",
        **options,
    )
    return supervisor, out


def _run_in_background(supervisor: Supervisor) -> threading.Thread:
    runner = threading.Thread(target=lambda: setattr(runner, "status", supervisor.run()))
    runner.start()
    return runner


def _status(tmp_path: Path) -> dict:
    path = tmp_path / "processes.json"
    return json.loads(path.read_text())["processes"] if path.exists() else {}


def test_a_child_that_keeps_dying_is_reported_and_restarted_while_the_rest_runs(tmp_path):
    crashing = ProcessSpec("crasher", f"{sys.executable} -c 'raise SystemExit(3)'")
    steady = ProcessSpec("steady", f"{sys.executable} -c 'import time; time.sleep(60)'")
    supervisor, out = _supervisor([crashing, steady], tmp_path)
    runner = _run_in_background(supervisor)
    try:
        wait_until(
            lambda: _status(tmp_path).get("crasher", {}).get("state") == "failing",
            timeout=30,
            message=out.getvalue(),
        )
        steady_pid = _status(tmp_path)["steady"]["pid"]
        restarts = _status(tmp_path)["crasher"]["restarts"]
        # Still restarted after being reported, never given up on.
        wait_until(lambda: _status(tmp_path)["crasher"]["restarts"] > restarts, timeout=10)
        assert _status(tmp_path)["crasher"]["last_exit"] == 3
        assert _status(tmp_path)["steady"] == {
            "pid": steady_pid,
            "state": "running",
            "restarts": 0,
            "last_exit": None,
        }
        assert "times in a minute: failing; restarting in 0.05s" in out.getvalue()
    finally:
        supervisor.request_stop()
        runner.join(timeout=30)
    assert runner.status == 0
    assert "steady" in out.getvalue() and "stopped (-15)" in out.getvalue()


def test_dead_infrastructure_is_recovered_without_stopping_the_children(tmp_path):
    def sleeper() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    infrastructure = {"process": sleeper()}

    def recover() -> None:
        infrastructure["process"] = sleeper()

    part = Infrastructure(
        "broker",
        alive=lambda: infrastructure["process"].poll() is None,
        recover=recover,
        pid=lambda: infrastructure["process"].pid,
    )
    steady = ProcessSpec("steady", f"{sys.executable} -c 'import time; time.sleep(60)'")
    supervisor, out = _supervisor([steady], tmp_path, infrastructure=[part])
    runner = _run_in_background(supervisor)
    try:
        wait_until(lambda: _status(tmp_path).get("steady", {}).get("pid"), timeout=20)
        steady_pid = _status(tmp_path)["steady"]["pid"]
        first = infrastructure["process"]
        first.kill()
        first.wait()
        wait_until(lambda: _status(tmp_path)["broker"]["restarts"] == 1, timeout=10)
        assert _status(tmp_path)["broker"]["state"] == "running"
        assert _status(tmp_path)["broker"]["pid"] != first.pid
        assert _status(tmp_path)["steady"]["pid"] == steady_pid
        assert "broker" in out.getvalue() and "died; restarting it" in out.getvalue()
    finally:
        supervisor.request_stop()
        runner.join(timeout=30)
        infrastructure["process"].kill()
        infrastructure["process"].wait()


def test_stop_request_stops_every_child_and_prefixes_their_output(tmp_path):
    talker = ProcessSpec(
        "talker", f"{sys.executable} -u -c \"print('hello'); import time; time.sleep(60)\""
    )
    supervisor, out = _supervisor([talker], tmp_path)
    runner = _run_in_background(supervisor)
    wait_until(lambda: "hello" in out.getvalue(), timeout=20)
    supervisor.request_stop()
    runner.join(timeout=30)
    assert runner.status == 0
    assert "talker |\x1b[0m hello" in out.getvalue()
    assert "stopped" in out.getvalue()


def test_procfile_lines_become_process_specs(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text("# comment\nweb: daphne app\n\nrelay: python manage.py relay_outbox\n")
    assert read_procfile(procfile) == [
        ProcessSpec("web", "daphne app"),
        ProcessSpec("relay", "python manage.py relay_outbox"),
    ]

import io
import os
import sys
import threading
from pathlib import Path

from eventplatform.supervisor import ProcessSpec, Supervisor, read_procfile
from tests.helpers import wait_until


def _supervisor(specs: list[ProcessSpec], tmp_path: Path) -> tuple[Supervisor, io.StringIO]:
    out = io.StringIO()
    return Supervisor(specs, env=dict(os.environ), cwd=tmp_path, out=out, restart_delay=0.01), out


def test_a_child_that_keeps_dying_is_reported_and_stops_the_platform(tmp_path):
    crashing = ProcessSpec("crasher", f"{sys.executable} -c 'raise SystemExit(3)'")
    steady = ProcessSpec("steady", f"{sys.executable} -c 'import time; time.sleep(60)'")
    supervisor, out = _supervisor([crashing, steady], tmp_path)
    assert supervisor.run() == 1
    assert supervisor.failed == "crasher"
    log = out.getvalue()
    assert log.count("exited unexpectedly with 3; restarting") == 5
    assert "exited with 3 5 times in a minute; stopping the platform" in log
    assert "steady" in log and "stopped (-15)" in log  # the healthy child got SIGTERM


def test_stop_request_stops_every_child_and_prefixes_their_output(tmp_path):
    talker = ProcessSpec(
        "talker", f"{sys.executable} -u -c \"print('hello'); import time; time.sleep(60)\""
    )
    supervisor, out = _supervisor([talker], tmp_path)
    runner = threading.Thread(target=lambda: setattr(runner, "status", supervisor.run()))
    runner.start()
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

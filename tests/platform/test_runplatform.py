"""``runplatform`` on embedded defaults (no database, broker or Redis configured): what a
user saved survives restarts of the whole stack and of its broker, one platform per var/,
and nothing of it outlives a SIGKILL.

Each test starts the real platform (every Procfile process) in a temporary ``VAR_DIR``.
"""

import os
import signal
import socket
import threading
import time

import pytest

from eventplatform.embedded.ports import free_port, wait_for_port
from tests.helpers import wait_until

from .embedded_platform import EmbeddedPlatform, Sites, history_rows, import_job, kv_value

SOUTH_SUDAN = {"zones": ["Africa/Juba"], "primary": "Africa/Juba"}


@pytest.fixture
def platform(tmp_path):
    platform = EmbeddedPlatform(tmp_path / "var", tmp_path)
    yield platform
    platform.close()


def _import_contacts(platform: EmbeddedPlatform, count: int) -> None:
    _start_an_import(platform, count, tag="user")
    wait_until(lambda: _contacts(platform) == count, timeout=60, interval=0.5)


def _contacts(platform: EmbeddedPlatform) -> int | None:
    return platform.get("/api/contacts")[1].get("count")


def _broker_port(platform: EmbeddedPlatform) -> int:
    return int(platform.output().split("embedded broker on 127.0.0.1:")[1].split()[0])


def _edit_countries_in_the_admin(platform: EmbeddedPlatform) -> None:
    status, page = platform.admin(
        "/admin/kv/supported-countries/add/", {"key": "SS", "name": "South Sudan"}
    )
    assert status == 200 and "Saved SS in supported-countries." in page, page[-2000:]
    status, page = platform.admin("/admin/kv/supported-countries/JP/delete/", {"post": "yes"})
    assert status == 200 and "Deleted JP from supported-countries." in page, page[-2000:]
    wait_until(lambda: kv_value(platform, "time-zones", "SS")[0] == 200, timeout=20)


def _assert_countries_survived(platform: EmbeddedPlatform) -> None:
    assert kv_value(platform, "time-zones", "SS") == (
        200,
        {"namespace": "time-zones", "key": "SS", "value": SOUTH_SUDAN},
    )
    assert kv_value(platform, "supported-countries", "JP")[0] == 404  # not re-seeded
    assert kv_value(platform, "time-zones", "JP")[0] == 404
    assert kv_value(platform, "supported-countries", "US")[0] == 200
    _, listing = platform.admin("/admin/kv/supported-countries/")
    assert 'id="kv-SS"' in listing and 'id="kv-JP"' not in listing
    _, page = platform.admin("/admin/kv/supported-countries/SS/history/")
    (write,) = history_rows(page)
    assert "admin" in write and "South Sudan" in write


def _more_sites_read_back_within_5_s(platform: EmbeddedPlatform, sites: Sites) -> None:
    old = list(sites.expected)
    sites.create(20, tag=f"start{platform.starts}")
    for site_id in old[:20]:
        sites.install(site_id, f"extra-{platform.starts}")
    assert len(sites.expected) >= 40
    # Fails unless a round of reads that began within 5 s found every site right.
    sites.wait_all_right(timeout=5)


def _start_an_import(platform: EmbeddedPlatform, rows: int, *, tag: str) -> str:
    """Upload a CSV of ``rows`` new contacts; returns the job's id (the import runs on)."""
    status, body = platform.request("POST", "/api/contacts/channels")
    assert status == 201, body
    lines = "".join(f"{tag}{n}@example.com,Person {n},,\n" for n in range(rows))
    status, body = platform.upload(
        "/api/contacts/imports",
        {"channel": body["channel"]},
        f"email,name,phone,company\n{lines}".encode(),
    )
    assert status == 202, body
    return body["job_id"]


def _import_ended(platform: EmbeddedPlatform, job_id: str) -> dict[str, str] | None:
    """The job's fields once it completed or failed; None while it runs (or the admin
    waits for the broker)."""
    try:
        job = import_job(platform, job_id)
    except OSError:
        return None
    return job if job.get("completed_at") or job.get("failure") else None


def _kill_the_broker_while_sites_are_written_and_an_import_runs(
    platform: EmbeddedPlatform, sites: Sites
) -> None:
    time.sleep(1.5)  # the journal has every site so far
    broker = platform.processes()["broker"]["pid"]
    before = len(sites.expected)
    refused: list[str] = []

    def write_meanwhile() -> None:
        deadline = time.monotonic() + 60
        while len(sites.expected) < before + 10 and time.monotonic() < deadline:
            try:
                sites.create(1, tag=f"during-{len(sites.expected)}")
            except AssertionError as error:  # the web process pauses while state returns
                refused.append(str(error))
                time.sleep(0.5)

    # 40 batches: far from imported when the broker dies 0.1 s after the upload (5,000 rows
    # were done within 0.3 s on a fast machine), yet few enough that its writes leave the
    # SQLite databases to the site writes meanwhile.
    rows = 20_000
    job_id = _start_an_import(platform, rows, tag="during-the-kill-")
    writer = threading.Thread(target=write_meanwhile)
    writer.start()
    time.sleep(0.1)
    assert not import_job(platform, job_id)["completed_at"]
    os.kill(broker, signal.SIGKILL)
    started = time.monotonic()
    writer.join(timeout=90)
    assert len(sites.expected) == before + 10, refused
    sites.wait_all_right(timeout=max(1.0, 60 - (time.monotonic() - started)))
    assert platform.processes()["broker"]["restarts"] == 1
    assert platform.processes()["broker"]["pid"] != broker
    assert kv_value(platform, "time-zones", "SS")[1]["value"] == SOUTH_SUDAN
    assert kv_value(platform, "supported-countries", "JP")[0] == 404
    assert "broker restarted: topics created" in platform.output()

    # The batches lost with the broker are produced again from the stored file; the
    # importers skip those already imported, so the totals are exact.
    wait_until(
        lambda: _import_ended(platform, job_id),
        timeout=max(1.0, 60 - (time.monotonic() - started)),
        interval=0.5,
        message="the import neither completed nor failed within 60 s of the broker's death",
    )
    job = import_job(platform, job_id)
    assert job["failure"] == "" and job["completed_at"], job
    assert (job["total_rows"], job["imported"], job["updated"], job["failed"]) == (
        str(rows),
        str(rows),
        "0",
        "0",
    ), job
    assert job["done_batches"] == job["total_batches"], job


def test_restarts_by_ctrl_c_and_of_the_broker_keep_what_was_saved_and_one_platform_runs(
    platform,
):
    platform.start()
    assert "embedded broker on 127.0.0.1:" in platform.output()
    assert f"http://127.0.0.1:{platform.port}/admin/" in platform.output()
    _edit_countries_in_the_admin(platform)
    sites = Sites(platform)
    sites.create(20, tag="first")
    _import_contacts(platform, 30)

    # A second platform on the same var/ is refused at once, naming the first.
    started = time.monotonic()
    second = platform.launch(free_port(), free_port(), command="dev.py")
    code = second.wait(timeout=10)
    took = time.monotonic() - started
    refusal = second.log_name.read_text()
    assert code != 0 and took < 5, (code, took, refusal)
    assert f"pid {platform.process.pid}" in refusal and f":{platform.port}/" in refusal
    sites.create(1, tag="after-refusal")  # the first keeps working
    sites.wait_all_right(timeout=30)

    platform.process.send_signal(signal.SIGINT)
    assert platform.process.wait(timeout=90) == 0, platform.output()[-3000:]
    output = platform.output()
    assert "platform stopped" in output and "did not stop in time" not in output
    assert not (platform.var_dir / "embedded.env").exists()

    platform.start()
    _assert_countries_survived(platform)
    assert _contacts(platform) == 30
    sites.wait_all_right(timeout=30)
    _more_sites_read_back_within_5_s(platform, sites)
    _kill_the_broker_while_sites_are_written_and_an_import_runs(platform, sites)
    assert platform.stop() == 0
    assert not wait_for_port("127.0.0.1", _broker_port(platform), timeout=0.5)


def test_sigkill_of_the_whole_tree_keeps_what_was_saved_and_runplatform_alone_leaves_none(
    platform,
):
    platform.start()
    _edit_countries_in_the_admin(platform)
    sites = Sites(platform)
    sites.create(20, tag="first")
    sites.wait_all_right(timeout=30)
    time.sleep(1.5)  # the README's bound: a SIGKILL may lose the last second of writes
    platform.kill_tree()

    platform.start()
    _assert_countries_survived(platform)
    sites.wait_all_right(timeout=30)
    _more_sites_read_back_within_5_s(platform, sites)

    # A dead Redis is restarted on its socket and the platform is ready again.
    redis = platform.processes()["redis"]["pid"]
    os.kill(redis, signal.SIGKILL)
    wait_until(lambda: platform.processes()["redis"]["restarts"] == 1, timeout=20)
    wait_until(platform.ready, timeout=30, interval=0.3)
    assert platform.processes()["redis"]["pid"] != redis

    children = platform.pids()
    assert len(children) > 10  # broker, Redis, journal, every Procfile process
    platform.process.send_signal(signal.SIGKILL)
    platform.process.wait(timeout=5)
    wait_until(
        lambda: not platform.pids(),
        timeout=5,
        message=f"still alive 5 s after runplatform was killed: {platform.pids()}",
    )


def test_a_port_in_use_is_one_line_with_the_port_hint(platform, tmp_path):
    busy = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", busy))
        holder.listen()
        process = platform.launch(busy, free_port())
        assert process.wait(timeout=30) == 1
    output = process.log_name.read_text().strip()
    assert output.splitlines() == [
        f"CommandError: PortInUse: port {busy} is already in use: choose another, e.g. "
        f"python3 dev.py run --port {busy + 10}"
    ]

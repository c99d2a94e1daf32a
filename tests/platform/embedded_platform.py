"""Drive a real ``runplatform`` on embedded defaults in a temporary ``VAR_DIR``: start it,
talk to its API (bearer token) and admin (session), find and kill its processes."""

import contextlib
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from eventplatform.embedded.ports import free_port
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
#: Left out of the platform's environment, so that it runs on its embedded defaults.
CONFIGURED = (
    "DATABASE_URL",
    "PROJECTIONS_DATABASE_URL",
    "PROJECTIONS_REPLICA_DATABASE_URL",
    "REDIS_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC_PREFIX",
    "DJANGO_SETTINGS_MODULE",
)


def platform_env(var_dir: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in CONFIGURED and not k.startswith("KAFKA_")
    }
    env.update(VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
    return env


class EmbeddedPlatform:
    """One ``runplatform`` on ``var_dir``; start again after a stop to test a restart."""

    def __init__(self, var_dir: Path, log_dir: Path):
        self.var_dir = var_dir
        self.log_dir = log_dir
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.token = ""
        self._admin: urllib.request.OpenerDirector | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self, port: int, read_port: int, *, command: str = "manage.py") -> subprocess.Popen:
        """Start a platform on this var/ without waiting; ``command`` may be ``dev.py``."""
        args = ["runplatform"] if command == "manage.py" else ["run"]
        log_name = self.log_dir / f"runplatform-{self.starts}-{port}.log"
        with open(log_name, "wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    command,
                    *args,
                    "--port",
                    str(port),
                    "--read-api-port",
                    str(read_port),
                ],
                cwd=ROOT,
                env=platform_env(self.var_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process.log_name = log_name
        return process

    def start(self, *, timeout: float = 120) -> "EmbeddedPlatform":
        self.starts += 1
        self.process = self.launch(self.port, free_port())
        wait_until(
            lambda: self.ready() or self.process.poll() is not None,
            timeout=timeout,
            interval=0.3,
        )
        assert self.ready(), self.process.log_name.read_text()[-4000:]
        if not self.token:
            self.token = self.manage("create_api_token", "admin").stdout.strip().split()[-1]
        self._admin = None
        return self

    def output(self) -> str:
        return self.process.log_name.read_text(errors="replace")

    def ready(self) -> bool:
        return self.get("/readyz", auth=False)[0] == 200

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=platform_env(self.var_dir),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    # -- HTTP ----------------------------------------------------------------------------

    def request(self, method: str, path: str, body=None, *, auth=True) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw or b"{}")
            except ValueError:
                return error.code, {}
        except OSError:
            return 0, {}

    def upload(self, path: str, fields: dict[str, str], file: bytes) -> tuple[int, dict]:
        """POST ``fields`` and ``file`` (as ``contacts.csv``) as multipart/form-data."""
        boundary = "----platform-test-boundary"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        ]
        body = (
            "".join(parts).encode()
            + f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="contacts.csv"\r\nContent-Type: text/csv\r\n\r\n'.encode()
            + file
            + f"\r\n--{boundary}--\r\n".encode()
        )
        request = urllib.request.Request(
            self.url + path,
            body,
            {
                "Authorization": f"Bearer {self.token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def get(self, path: str, *, auth=True) -> tuple[int, dict]:
        return self.request("GET", path, auth=auth)

    def admin(self, path: str, form: dict | None = None) -> tuple[int, str]:
        """GET (or POST ``form`` to) an admin page as the development superuser."""
        if self._admin is None:
            jar = http.cookiejar.CookieJar()
            self._admin = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            self._admin.jar = jar
            self._admin.open(self.url + "/admin/login/", timeout=10).read()
            self._post("/admin/login/?next=/admin/", {"username": "admin", "password": "admin"})
        if form is None:
            with self._admin.open(self.url + path, timeout=30) as response:
                return response.status, response.read().decode()
        return self._post(path, form)

    def _post(self, path: str, form: dict) -> tuple[int, str]:
        csrf = next(c.value for c in self._admin.jar if c.name == "csrftoken")
        data = urllib.parse.urlencode({**form, "csrfmiddlewaretoken": csrf}).encode()
        try:
            with self._admin.open(self.url + path, data, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    # -- processes -----------------------------------------------------------------------

    def pids(self) -> list[int]:
        """Every live process started for this platform (they all carry its VAR_DIR)."""
        marker = f"VAR_DIR={self.var_dir}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if marker in environ and state != "Z":
                found.append(int(entry.name))
        return found

    def kill_tree(self) -> None:
        """SIGKILL every process of the platform at once, as a crash or power cut would."""
        self._kill_all()
        self.process.wait(timeout=10)
        wait_until(lambda: not self.pids(), timeout=10)

    def _kill_all(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def processes(self) -> dict:
        return json.loads((self.var_dir / "processes.json").read_text())["processes"]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=90)

    def close(self) -> None:
        """Leave nothing running (after a failed test)."""
        self._kill_all()
        if self.process and self.process.poll() is None:
            self.process.wait(timeout=10)


class Sites:
    """Sites written through the API, with the state the read API must come to show."""

    def __init__(self, platform: EmbeddedPlatform):
        self.platform = platform
        self.expected: dict[str, tuple[int, list[str]]] = {}

    def create(self, count: int, *, tag: str) -> list[str]:
        ids = []
        for n in range(count):
            status, site = self.platform.request(
                "POST", "/api/sites", {"name": f"{tag}-{n}", "owner": "admin"}
            )
            assert status == 201, (status, site)
            app = f"app-{tag}-{n}"
            status, site = self.install(site["id"], app)
            ids.append(site["id"])
        return ids

    def install(self, site_id: str, app: str) -> tuple[int, dict]:
        status, body = self.platform.request(
            "PUT", f"/api/sites/{site_id}/apps/{app}", {"settings": {}}
        )
        assert status in (200, 201), (status, body)
        # The answer is the site as installed; a second request could meet the pause a
        # broker restart causes and leave a written site unrecorded.
        self.expected[site_id] = (body["version"], sorted(a["app_id"] for a in body["apps"]))
        return status, body

    def wrong(self, seen_right: dict[str, tuple[int, list[str]]]) -> list[str]:
        """Sites the read API does not (yet) show as written. A site ``seen_right`` as it is
        expected now is not read again; one read right now is added to it."""
        wrong = []
        for site_id, expected in self.expected.items():
            if seen_right.get(site_id) == expected:
                continue
            status, body = self.platform.get(f"/api/installed-apps/sites/{site_id}")
            shown = (body.get("version"), sorted(a["app_id"] for a in body.get("apps", [])))
            if status == 200 and shown == expected:
                seen_right[site_id] = expected
            else:
                wrong.append(site_id)
        return wrong

    def wait_all_right(self, *, timeout: float) -> float:
        """Seconds until every site reads back right (fails the test after ``timeout``).

        Every site is read at least once after the wait begins (a restart in between must
        not be taken on trust); one read right is not read again in the same wait, as a
        projection never goes back a version, so each round stays short.
        """
        started, seen_right = time.monotonic(), {}
        while wrong := self.wrong(seen_right):
            if time.monotonic() - started > timeout:
                raise AssertionError(f"sites still wrong after {timeout}s: {wrong[:5]}")
            time.sleep(0.25)
        return time.monotonic() - started


def import_job(platform: EmbeddedPlatform, job_id: str) -> dict[str, str]:
    """The import job's fields as its admin page shows them ("" where it shows nothing)."""
    _, page = platform.admin(f"/admin/contacts/importjob/{job_id}/change/")
    fields = re.findall(r'field-(\w+)">.*?<div class="readonly">(.*?)</div>', page, re.DOTALL)
    return {name: "" if value.strip() == "-" else value.strip() for name, value in fields}


def kv_value(platform: EmbeddedPlatform, namespace: str, key: str) -> tuple[int, dict]:
    return platform.get(f"/api/kv/{namespace}/{key}")


def history_rows(page: str) -> list[str]:
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    return [re.sub(r"\s+", " ", row) for row in body.split("<tr>")[1:]]

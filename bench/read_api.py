"""The read API under its Procfile process type, against a bare Django JSON view.

Both are served by the same gunicorn command as the ``read_api`` line of the Procfile
(only the settings module differs, to add the bare view) and loaded by the same ``wrk``
at the same concurrency. Both are asked the same way: a ``wrk`` script rotates over every
projected site's id, in the site path or in the bare view's, since ``wrk`` runs on the
same two cores as the server and a script costs it more per request than a fixed one.
Prints requests/s and p50/p99 latency of each, and site/bare.

Every request of both carries ``Authorization: Bearer <token>`` (a read-only service token):
the bare view authenticates it the same way the API does, so the ratio measures the read
path, not the authentication, and a token on every request must not cost the API its speed.

Each web process keeps the documents it served in memory until the projector announces a
change (``sites.projection.document_cache``), so the site path is warmed until the workers
hold all the sites: the figure is the steady state of a working set that fits in memory
(``READ_API_DOCUMENT_CACHE_ENTRIES``); a larger one reads the replica for its misses.

With ``PROJECTIONS_REPLICA_DATABASE_URL`` set (the hot standby of ``.ci/standby``, same
database name as ``PROJECTIONS_DATABASE_URL``) the site requests read the standby, as in
production; the seeded projection is replayed there before the load starts.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_sites \\
    PROJECTIONS_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_sites_proj \\
    PROJECTIONS_REPLICA_DATABASE_URL=postgres://postgres@127.0.0.1:5433/bench_sites_proj \\
    .venv/bin/python -m bench.read_api [--workers 3] [--connections 50] [--rounds 3]
        [--warm-seconds 15]
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import benchmark_environment, report

SITES = 2_000


def seed_projection() -> list[uuid.UUID]:
    """Project ``SITES`` sites with five apps each, as the projector would."""
    from django.db import transaction

    from eventplatform.replica import wait_for_replay
    from eventplatform.routers import PROJECTIONS
    from sites.events import SiteChange
    from sites.projection.generations import target_generations
    from sites.projection.models import InstalledApp, ProjectedSite
    from sites.projection.writer import project

    for model in (InstalledApp, ProjectedSite):
        model.objects.using(PROJECTIONS).all().delete()
    now = datetime.now(UTC)
    site_ids = [uuid.uuid4() for _ in range(SITES)]
    changes = [
        SiteChange(
            site_id=site_id,
            version=1,
            deleted=False,
            apps=tuple((f"app-{n}", now) for n in range(5)),
        )
        for site_id in site_ids
    ]
    with transaction.atomic(using=PROJECTIONS):
        project(changes=changes, generations=target_generations())
    wait_for_replay(timeout=120)
    return site_ids


def issue_read_token() -> str:
    """A read-only token of a service user, as a client of the read API would hold."""
    from django.contrib.auth import get_user_model

    from eventplatform.models import ApiToken

    user, _ = get_user_model().objects.get_or_create(username="bench-reader")
    return ApiToken.issue(user, name="bench", read_only=True)[1]


def replica_description() -> str:
    from django.db import connections

    from eventplatform.replica import is_standby
    from eventplatform.routers import PROJECTIONS_REPLICA

    config = connections[PROJECTIONS_REPLICA].settings_dict
    if is_standby():
        return f"hot standby {config['HOST']}:{config['PORT']}"
    return f"{connections[PROJECTIONS_REPLICA].vendor}, the projections database itself"


def rotating_script(site_ids: list[uuid.UUID], path: str) -> Path:
    """A ``wrk`` script asking for ``path`` followed by each site id in turn."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            "ids = {" + ",".join(f'"{s}"' for s in site_ids) + "}\n"
            "i = 0\n"
            "request = function()\n"
            "  i = i + 1\n"
            f'  return wrk.format("GET", "{path}" .. ids[i % #ids + 1])\n'
            "end\n"
        )
    return Path(script.name)


def wrk(url: str, *, script: Path | None, connections: int, seconds: int, token: str) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    if script:
        command[1:1] = ["-s", str(script)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        sys.exit(f"{url} answered {errors.group(1)} errors:\n{output}")

    def latency_ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": latency_ms("50"),
        "p99": latency_ms("99"),
    }


def combine(rounds: list[dict]) -> dict:
    """Mean requests/s and median latencies over interleaved rounds."""
    return {
        "rps": statistics.fmean(r["rps"] for r in rounds),
        "p50": statistics.median(r["p50"] for r in rounds),
        "p99": statistics.median(r["p99"] for r in rounds),
    }


def start_gunicorn(port: int, workers: int) -> subprocess.Popen:
    from eventplatform.embedded.ports import wait_for_port

    # The read_api line of the Procfile, with the bench settings.
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "eventplatform.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
    ]
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="bench.read_api_settings",
    )
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if not wait_for_port("127.0.0.1", port, timeout=30):
        process.kill()
        sys.exit("gunicorn did not start")
    return process


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=5, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--warm-seconds", type=int, default=15, help="of site requests before measuring"
    )
    options = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed (apt-get install wrk)")

    with benchmark_environment():
        from eventplatform.embedded.ports import free_port

        site_ids = seed_projection()
        token = issue_read_token()
        replica = replica_description()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        site_script = rotating_script(site_ids, "/api/installed-apps/sites/")
        bare_script = rotating_script(site_ids, "/bench/bare-json/")
        server = start_gunicorn(port, options.workers)
        try:
            load = {
                "connections": options.connections,
                "seconds": options.seconds,
                "token": token,
            }
            # Warm both paths (connections, imports, the token cache) before measuring: the
            # steady state is measured. The site path is warmed for longer, since each
            # worker keeps every document it served in memory (until the projector
            # announces a change) and must first read each of the sites from the replica.
            warm = {"connections": options.connections, "token": token}
            wrk(base, script=bare_script, seconds=2, **warm)
            wrk(base, script=site_script, seconds=options.warm_seconds, **warm)
            # Interleaved rounds, so a change in the machine's load hits both alike.
            bare_rounds, site_rounds = [], []
            for _ in range(options.rounds):
                bare_rounds.append(wrk(base, script=bare_script, **load))
                site_rounds.append(wrk(base, script=site_script, **load))
            bare, site = combine(bare_rounds), combine(site_rounds)
        finally:
            server.terminate()
            server.wait()
            site_script.unlink()
            bare_script.unlink()

    def line(result: dict) -> str:
        return f"{result['rps']:,.0f} req/s  p50 {result['p50']:.2f} ms  p99 {result['p99']:.2f} ms"

    report(
        f"read API: gunicorn {options.workers} sync workers, wrk {options.connections} "
        f"connections, {options.rounds} interleaved rounds x {options.seconds} s, "
        f"{SITES:,} sites, replica: {replica}, a bearer token on every request",
        {
            "bare Django JSON view": line(bare),
            "GET /api/installed-apps/sites/{id}": line(site),
            "site / bare": f"{site['rps'] / bare['rps']:.2f} (target >= 0.9)",
        },
    )


if __name__ == "__main__":
    main()

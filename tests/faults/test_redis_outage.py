"""Redis down while a user uploads: a clear refusal and no orphan job, then it works again."""

import pytest
import requests
from django.contrib.auth import get_user_model

from contacts.models import ImportJob
from eventplatform.models import ApiToken
from tests.contacts.conftest import contacts_csv
from tests.helpers import wait_until

# Every database: the platform's processes use the projections test database too.
pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "projections", "projections_replica"]
)


def _upload(api: requests.Session, web_url: str, channel: str, rows: int) -> requests.Response:
    return api.post(
        f"{web_url}/api/contacts/imports",
        files={"file": ("contacts.csv", contacts_csv(rows, bad_every=100))},
        data={"channel": channel},
        timeout=60,
    )


def test_an_upload_while_redis_is_down_is_refused_without_a_job_and_works_once_it_is_back(
    platform_on_private_redis, private_redis
):
    platform = platform_on_private_redis
    user = get_user_model().objects.create_user("uploader")
    _, token = ApiToken.issue(user, name="faults")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    channel = api.post(f"{platform.web_url}/api/contacts/channels", timeout=30).json()["channel"]

    private_redis.stop()
    refused = _upload(api, platform.web_url, channel, rows=1000)
    assert refused.status_code == 503, refused.text
    assert refused.headers["Content-Type"].startswith("application/json")
    assert int(refused.headers["Retry-After"]) > 0
    assert "try again" in refused.json()["detail"]
    assert not ImportJob.objects.exists()  # no job that nothing would ever split

    private_redis.start()  # empty: nothing was kept
    accepted = _upload(api, platform.web_url, channel, rows=1000)
    assert accepted.status_code == 202, accepted.text
    job = ImportJob.objects.get(id=accepted.json()["job_id"])

    def finished() -> bool:
        job.refresh_from_db()
        return job.completed_at is not None or bool(job.failure)

    wait_until(finished, timeout=90, interval=0.2)
    assert (job.failure, job.imported, job.failed) == ("", 990, 10)
    assert ImportJob.objects.count() == 1
    assert platform.exited() == {}

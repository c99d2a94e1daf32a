"""A row committed late, with an id inside the batch the PostgreSQL relay is sending, still
reaches the broker before the later rows of its key.

Ids are given at insert and rows become visible at commit, so a slow transaction's row can
appear behind rows with higher ids. A later change of the same key waits for that commit
(the writers of one key serialise on its row, as the sites' writers do on the site's), so
its row always gets a higher id and commits after it.
"""

import threading

import pytest
from django.db import connections, transaction

from eventplatform import outbox_stream
from eventplatform.kafka.config import topic_name
from eventplatform.kafka.envelope import Event
from eventplatform.models import OutboxEvent
from eventplatform.outbox import OutboxRelay, publish
from tests.helpers import read_topic

TOPIC = "test.records"


def _publish(key: str, n: int) -> None:
    with transaction.atomic():
        publish(TOPIC, key, Event(type="Counted", data={"n": n}))


class _SlowWriter(threading.Thread):
    """Publishes one row and holds its transaction open until released."""

    def __init__(self, key: str, n: int):
        super().__init__(daemon=True)
        self.key, self.n = key, n
        self.inserted, self.release = threading.Event(), threading.Event()

    def run(self) -> None:
        try:
            with transaction.atomic():
                publish(TOPIC, self.key, Event(type="Counted", data={"n": self.n}))
                self.inserted.set()
                self.release.wait(10)
        finally:
            connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_a_row_committed_late_inside_the_batch_in_flight_keeps_its_keys_order(kafka, monkeypatch):
    _publish("other", 0)
    slow = _SlowWriter("site", 1)
    slow.start()
    assert slow.inserted.wait(10)
    _publish("other", 2)  # a higher id, visible before the slow row
    first_select = list(OutboxEvent.objects.order_by("id").values_list("key", flat=True))
    assert first_select == ["other", "other"]

    steps = []
    real_step = outbox_stream.OutboxStream._database_step

    def step(self, *, record, in_flight, meanwhile=None):
        steps.append(in_flight)
        if len(steps) == 2:
            # The first batch (both "other" rows) is about to be sent: the slow row commits
            # inside its id range, then the key's next change commits with a higher id.
            slow.release.set()
            slow.join(10)
            _publish("site", 3)
        return real_step(self, record=record, in_flight=in_flight, meanwhile=meanwhile)

    monkeypatch.setattr(outbox_stream.OutboxStream, "_database_step", step)
    relay = OutboxRelay()
    while relay.relay_once():
        pass

    slow_id = OutboxEvent.objects.get(key="site", id__lt=max(steps[1])).id
    assert steps[1][0] < slow_id < steps[1][-1], "the slow row was not inside the batch in flight"
    received = [
        (record.key.decode(), Event.decode(record.value).data["n"])
        for record in read_topic(topic_name(TOPIC), expected=4)
    ]
    assert [n for key, n in received if key == "site"] == [1, 3]
    assert sorted(n for _, n in received) == [0, 1, 2, 3]
    assert not OutboxEvent.objects.filter(sent_at__isnull=True).exists()

"""KV gauges for ``/metrics``: entries and readiness of the stores this process follows."""

from prometheus_client import Gauge

from eventplatform.metrics import on_scrape

from .stores import started_stores

kv_entries = Gauge("kvconfig_entries", "Entries in this process's KV store", ["namespace"])
kv_ready = Gauge("kvconfig_ready", "1 when this process's KV store has caught up", ["namespace"])
kv_skipped = Gauge(
    "kvconfig_skipped_records", "Invalid records skipped by this process's store", ["namespace"]
)


@on_scrape
def _refresh() -> None:
    # Only stores already started: a scrape must never start a reader or wait for one.
    for store in started_stores():
        name = store.namespace.name
        kv_entries.labels(name).set(store.entries_now)
        kv_ready.labels(name).set(1 if store.ready else 0)
        kv_skipped.labels(name).set(store.skipped)

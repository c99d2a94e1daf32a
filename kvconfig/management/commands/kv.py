"""``manage.py kv``: operate a KV namespace from the shell (backup, restore, seeding)."""

import functools
import getpass
import json
import queue
import sys

from django.core.management.base import CommandError
from kafka import KafkaConsumer, TopicPartition

from eventplatform.cli import PlatformCommand, progress
from eventplatform.kafka.config import consumer_options
from kvconfig.namespaces import SUPPORTED_COUNTRIES, UnknownNamespace
from kvconfig.schema import KVValidationError, thaw
from kvconfig.services import delete_entry, load_entries, set_entry
from kvconfig.store import KVError
from kvconfig.stores import get_store

#: Seeded by ``kv seed`` (run by ``runplatform``) into a supported-countries topic that never
#: held a record: once anything was written, even a deletion, the user's choice stands.
SEED_COUNTRIES = {
    "US": "United States",
    "GB": "United Kingdom",
    "DE": "Germany",
    "FR": "France",
    "JP": "Japan",
    "BR": "Brazil",
    "IN": "India",
}


def _json(value) -> str:
    return json.dumps(thaw(value), ensure_ascii=False, sort_keys=True)


class Command(PlatformCommand):
    help = "Dump, load, get, set, delete or watch entries of a KV namespace; seed defaults."

    def add_arguments(self, parser):
        parser.add_argument("--editor", default=f"cli:{getpass.getuser()}")
        actions = parser.add_subparsers(dest="action", required=True)
        dump = actions.add_parser("dump", help="every entry as JSON lines {key, value}")
        dump.add_argument("namespace")
        load = actions.add_parser("load", help="write the JSON lines of FILE ('-' = stdin)")
        load.add_argument("namespace")
        load.add_argument("file")
        load.add_argument(
            "--replace",
            action="store_true",
            help="make the namespace equal to FILE: also delete the keys FILE does not name",
        )
        get = actions.add_parser("get", help="print the value of KEY as JSON")
        get.add_argument("namespace")
        get.add_argument("key")
        set_ = actions.add_parser("set", help="write VALUE (JSON) under KEY")
        set_.add_argument("namespace")
        set_.add_argument("key")
        set_.add_argument("value")
        delete = actions.add_parser("delete", help="delete KEY (tombstone)")
        delete.add_argument("namespace")
        delete.add_argument("key")
        watch = actions.add_parser("watch", help="print changes as JSON lines until killed")
        watch.add_argument("namespace")
        actions.add_parser(
            "seed", help="seed supported countries when nothing was ever written there"
        )

    def handle(self, *args, action, editor, **options):
        try:
            getattr(self, f"_{action}")(editor=editor, **options)
        except (KVValidationError, UnknownNamespace, KVError) as error:
            # The store's own message says it all; broker and database failures end in one
            # line through PlatformCommand.
            raise CommandError(str(error)) from None

    def _dump(self, *, namespace, **_):
        for key, value in sorted(get_store(namespace).items()):
            self.stdout.write(_json({"key": key, "value": value}))

    def _load(self, *, namespace, file, editor, replace, **_):
        spec = get_store(namespace).namespace  # unknown namespace: say so before reading
        # Read as bytes and decoded line by line, so an error names the line it is on.
        stream = sys.stdin.buffer if file == "-" else _open(file)
        entries = []
        lines = progress(
            stream, total=None, what=f"reading {file}", stream=self.stderr, unit="line"
        )
        with stream:
            for number, line in enumerate(lines, 1):
                entry = _parse_line(number, line)
                if entry is None:
                    continue
                try:
                    spec.validate_key(entry[0])
                    spec.validate_value(entry[1])
                except KVValidationError as error:
                    raise CommandError(f"line {number}: {error}; nothing written") from None
                entries.append(entry)
        written, deleted = load_entries(
            namespace=namespace,
            entries=entries,
            editor=editor,
            replace=replace,
            progress=functools.partial(progress, stream=self.stderr),
        )
        named = len({key for key, _ in entries})
        summary = f"{written} written, {named - written} unchanged"
        self.stdout.write(summary + (f", {deleted} deleted" if replace else ""))

    def _get(self, *, namespace, key, **_):
        value = get_store(namespace).get(key)
        if value is None:
            raise CommandError(f"no key {key!r} in namespace {namespace!r}")
        self.stdout.write(_json(value))

    def _set(self, *, namespace, key, value, editor, **_):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as error:
            raise CommandError(f"VALUE is not JSON: {error}") from None
        stored = set_entry(namespace=namespace, key=key, value=parsed, editor=editor)
        self.stdout.write(_json(stored))

    def _delete(self, *, namespace, key, editor, **_):
        delete_entry(namespace=namespace, key=key, editor=editor)
        self.stdout.write(f"deleted {key}")

    def _watch(self, *, namespace, **_):
        store = get_store(namespace)
        # Printed here, not on the store's reader thread: a change applied just after the
        # store became ready still comes after the ready line, and a reader of this output
        # who falls behind holds up no one but this command.
        changes: queue.SimpleQueue = queue.SimpleQueue()
        store.subscribe(lambda key, old, new: changes.put({"key": key, "old": old, "new": new}))
        store.wait_ready()
        self._line({"ready": True, "entries": dict(store.snapshot())})
        while True:  # until the process is stopped
            self._line(changes.get())

    def _line(self, value) -> None:
        self.stdout.write(_json(value))
        self.stdout.flush()

    def _seed(self, *, editor, **_):
        store = get_store(SUPPORTED_COUNTRIES.name)
        if len(store):
            self.stdout.write(f"supported-countries has {len(store)} entries: not seeding")
            return
        if _ever_written(store.topic):
            self.stdout.write("supported-countries was emptied by hand: not seeding")
            return
        store.put_many(((k, {"name": n}) for k, n in SEED_COUNTRIES.items()), editor=editor)
        self.stdout.write(f"seeded {len(SEED_COUNTRIES)} supported countries")


def _ever_written(topic: str) -> bool:
    """Whether the topic's log holds any record, a deletion included."""
    consumer = KafkaConsumer(**consumer_options(), group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return any(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def _open(path: str):
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by the caller's with
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror}") from None


def _parse_line(number: int, raw: bytes) -> tuple[str, object] | None:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CommandError(
            f"line {number}: not UTF-8 text ({error.reason} at byte {error.start + 1}); "
            "nothing written"
        ) from None
    if not line.strip():
        return None
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as error:
        raise CommandError(f"line {number}: not JSON ({error}); nothing written") from None
    if not isinstance(entry, dict) or set(entry) != {"key", "value"}:
        raise CommandError(f'line {number}: expected {{"key": ..., "value": ...}}; nothing written')
    return entry["key"], entry["value"]

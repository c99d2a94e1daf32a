"""The set-up steps of ``runplatform``, in one process (each Django start costs seconds).

``python -m eventplatform.embedded.setup [--journal DIR] [--topics-only]``: migrate both
databases, make the development superuser, create the topics, replay the journal into
them (with ``--journal``, i.e. on the embedded broker) and seed the KV defaults. With
``--topics-only`` (a restarted broker) only the topics and the journal. With
``--republish-sites`` every site goes through the outbox again: after a crash the relay may
have sent events that the broker took but the journal had not yet synced, and the
projector's version guard makes the repeats harmless. The last line says how many
journaled records were restored.
"""

import argparse
import os
from pathlib import Path


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventplatform.settings")
    django.setup()
    from django.core.management import call_command

    from eventplatform.embedded.journal import replay, stateful_topics

    parser = argparse.ArgumentParser()
    parser.add_argument("--journal", type=Path)
    parser.add_argument("--topics-only", action="store_true")
    parser.add_argument("--republish-sites", action="store_true")
    options = parser.parse_args()
    if not options.topics_only:
        for database in ("default", "projections"):
            call_command(
                "migrate", database=database, interactive=False, verbosity=0, fake_initial=True
            )
        call_command("ensure_dev_superuser")
    call_command("create_topics")
    # Before anything else writes: the journal's records must be first in each partition.
    restored = replay(options.journal, stateful_topics()) if options.journal else 0
    if not options.topics_only:
        call_command("kv", "seed")
    if options.republish_sites:
        call_command("publish_sites", "--all")
    print(f"restored {restored} records", flush=True)


if __name__ == "__main__":
    main()

"""The set-up steps of ``runplatform``, in one process (each Django start costs seconds).

``python -m eventplatform.embedded.setup [--journal DIR] [--fresh-broker] [--topics-only]
[--republish-sites]``: migrate both databases, make the development superuser, create the
topics, replay the journal into them (with ``--journal``, i.e. on the embedded broker) and
seed the KV defaults. With ``--topics-only`` (a restarted broker) only the topics and the
journal. With ``--republish-sites`` every site goes through the outbox again: after a crash
the relay may have sent events that the broker took but the journal had not yet synced,
and the projector's version guard makes the repeats harmless. With ``--fresh-broker`` (the
embedded broker started empty: at every start, and after it was restarted) each function
named in ``EMBEDDED_BROKER_START_HOOKS`` runs, so an app can produce again what lived only
in its transient topics. The last line says how many journaled records were restored; a
foreseeable failure ends in one line on stderr and exit code 1.
"""

import argparse
import os
import sys
from pathlib import Path


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventplatform.settings")
    django.setup()
    from django.core.management.base import CommandError

    from eventplatform.cli import USER_ERRORS

    parser = argparse.ArgumentParser()
    parser.add_argument("--journal", type=Path)
    parser.add_argument("--fresh-broker", action="store_true")
    parser.add_argument("--topics-only", action="store_true")
    parser.add_argument("--republish-sites", action="store_true")
    try:
        restored = set_up(parser.parse_args())
    except (CommandError, *USER_ERRORS) as error:
        sys.exit(f"{type(error).__name__}: {' '.join(str(error).split())}")
    print(f"restored {restored} records", flush=True)


def set_up(options: argparse.Namespace) -> int:
    """The steps ``options`` ask for, in order; returns how many records were restored."""
    from django.conf import settings
    from django.core.management import call_command
    from django.utils.module_loading import import_string

    from eventplatform.embedded.journal import dead_letter_topics, journaled_topics, replay

    if not options.topics_only:
        for database in ("default", "projections"):
            call_command(
                "migrate", database=database, interactive=False, verbosity=0, fake_initial=True
            )
        call_command("ensure_dev_superuser")
    call_command("create_topics")
    # Before anything else writes: the journal's records must be first in each partition.
    restored = 0
    if options.journal:
        uncompacted = frozenset(dead_letter_topics())
        restored = replay(options.journal, journaled_topics(), uncompacted=uncompacted)
    if not options.topics_only:
        call_command("kv", "seed")
    if options.republish_sites:
        call_command("publish_sites", "--all")
    if options.fresh_broker:
        for hook in settings.EMBEDDED_BROKER_START_HOOKS:
            import_string(hook)()
    return restored


if __name__ == "__main__":
    main()

"""What every management command shares: user errors in one line, and progress bars.

A user error (a broker or database that does not answer, a missing topic, a bad value) is
something the person at the shell can fix, so it ends the command with one line on stderr
and exit code 1, as Django does for ``CommandError``; a traceback is for the bugs that
remain (``--traceback`` still shows one for any error).
"""

from collections.abc import Iterable, Iterator
from typing import TypeVar

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, OperationalError, ProgrammingError
from kafka.errors import KafkaError
from tqdm import tqdm

from eventplatform.kafka.topics import TopicMissing, TopicShapeMismatch

T = TypeVar("T")

USER_ERRORS: tuple[type[BaseException], ...] = (
    KafkaError,
    OperationalError,
    ProgrammingError,  # most often a database that was never migrated
    TopicMissing,
    TopicShapeMismatch,
    ValidationError,
)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    lines = str(exc).strip().splitlines()  # a database error's first line says it all
    name, text = type(exc).__name__, " ".join(lines[0].split()) if lines else ""
    if isinstance(exc, DatabaseError) and ("does not exist" in text or "no such table" in text):
        text += " (is the database migrated? run manage.py migrate)"
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


class PlatformCommand(BaseCommand):
    """A command whose foreseeable failures end in one line and exit code 1.

    Subclasses name their own foreseeable failures in ``user_errors``.
    """

    user_errors: tuple[type[BaseException], ...] = ()

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except CommandError:
            raise
        except (*USER_ERRORS, *self.user_errors) as exc:
            if options.get("traceback"):
                raise
            raise CommandError(_one_line(exc)) from exc


def progress(
    items: Iterable[T], *, total: int | None, what: str, stream=None, unit: str = "it"
) -> Iterator[T]:
    """Iterate ``items`` showing a progress bar on stderr (plain updates when not a tty)."""
    bar = tqdm(
        items,
        total=total,
        desc=what,
        unit=unit,
        file=stream,
        mininterval=0.5,
        dynamic_ncols=True,
        leave=True,
    )
    with bar:
        yield from bar

"""The rows of an import that were not imported, as a CSV to fix and upload again.

The rows are copied from the stored upload exactly as written (every column, the ignored
ones too) under the file's own header, with an ``error`` column in front saying why each
was refused. The error column comes first so that a ragged row (too few or too many fields)
still has its reason in the right place; uploaded again, the column is reported as ignored.
"""

import csv
import re
from collections.abc import Iterator

from .csv_reader import CsvFile, UnreadableFile
from .models import ImportJob
from .split import open_csv

ERROR_COLUMN = "error"
_NONE_TO_GIVE = "this import has no refused rows to download: "


class NoRefusedRows(Exception):
    """The import failed as a whole (its file could not be read, say), so it has no
    refused rows to give; ``str()`` says why."""


class _Line:
    """A file-like target for ``csv.writer`` that hands back what was written."""

    def __init__(self):
        self.text = ""

    def write(self, text: str) -> None:
        self.text = text


class FailedRowsCsv:
    """The CSV text of an import's refused rows, record by record (UTF-8, comma-separated).

    Built by :func:`open_failed_rows`, which has already opened and checked the file, so
    iterating reads only records the import's split read before. ``close()`` closes the
    file (a ``StreamingHttpResponse`` calls it when the response is done).
    """

    def __init__(self, job: ImportJob, reasons: dict[int, str], csv_file: CsvFile):
        self._job, self._reasons, self._csv_file = job, reasons, csv_file

    def __iter__(self) -> Iterator[str]:
        reasons = dict(self._reasons)
        target = _Line()
        writer = csv.writer(target, lineterminator="\r\n")
        writer.writerow([ERROR_COLUMN, *self._csv_file.header])
        yield target.text
        records = self._csv_file.records() if reasons else iter(())
        for line, record, _problem in records:
            reason = reasons.pop(line, None)
            if reason is not None:
                writer.writerow([reason, *record])
                yield target.text
            if not reasons:
                break

    def close(self) -> None:
        self._job.file.close()


def open_failed_rows(job: ImportJob) -> FailedRowsCsv:
    """Open ``job``'s stored file for its refused rows, before any text is produced.

    Raises :class:`NoRefusedRows` if the import failed with no row refused or its file
    cannot be read, and ``FileNotFoundError`` if the upload is no longer stored.
    """
    reasons = dict(job.row_errors.values_list("line", "reason"))
    if not reasons and job.failure:
        raise NoRefusedRows(f"{_NONE_TO_GIVE}{job.failure}")
    try:
        csv_file = open_csv(job)
    except UnreadableFile as error:
        job.file.close()
        raise NoRefusedRows(f"{_NONE_TO_GIVE}{error}") from None
    except BaseException:
        job.file.close()
        raise
    return FailedRowsCsv(job, reasons, csv_file)


def failed_rows_filename(job: ImportJob) -> str:
    """``contacts-failed-rows.csv`` for an upload named ``contacts.csv``."""
    stem = (job.original_name or "import").rsplit(".", 1)[0] or "import"
    # Only characters that need no quoting in a Content-Disposition header.
    stem = re.sub(r"[^\w.\- ]", "_", stem)
    return f"{stem}-failed-rows.csv"

"""The rows of an import that were not imported, as a CSV to fix and upload again.

The rows are copied from the stored upload exactly as written (every column, the ignored
ones too) under the file's own header, with an ``error`` column in front saying why each
was refused. The error column comes first so that a ragged row (too few or too many fields)
still has its reason in the right place; uploaded again, the column is reported as ignored.
"""

import csv
import re
from collections.abc import Iterator

from .models import ImportJob
from .split import open_csv

ERROR_COLUMN = "error"


class _Line:
    """A file-like target for ``csv.writer`` that hands back what was written."""

    def __init__(self):
        self.text = ""

    def write(self, text: str) -> None:
        self.text = text


def failed_rows_csv(job: ImportJob) -> Iterator[str]:
    """The CSV text of ``job``'s failed rows, record by record (UTF-8, comma-separated).

    Raises ``FileNotFoundError`` if the upload is no longer stored.
    """
    reasons = dict(job.row_errors.values_list("line", "reason"))
    csv_file = open_csv(job)
    try:
        target = _Line()
        writer = csv.writer(target, lineterminator="\r\n")
        writer.writerow([ERROR_COLUMN, *csv_file.header])
        yield target.text
        for line, record in csv_file.records():
            reason = reasons.pop(line, None)
            if reason is not None:
                writer.writerow([reason, *record])
                yield target.text
            if not reasons:
                break
    finally:
        job.file.close()


def failed_rows_filename(job: ImportJob) -> str:
    """``contacts-failed-rows.csv`` for an upload named ``contacts.csv``."""
    stem = (job.original_name or "import").rsplit(".", 1)[0] or "import"
    # Only characters that need no quoting in a Content-Disposition header.
    stem = re.sub(r"[^\w.\- ]", "_", stem)
    return f"{stem}-failed-rows.csv"

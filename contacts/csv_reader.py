"""Streaming CSV reading for contact imports: dialect, header, rows with line numbers.

Accepts UTF-8 with or without a BOM; comma, semicolon or tab (guessed from the header);
header names matched case-insensitively with common aliases. A first-name and a last-name
column (``first_name``/``last_name``, ``given name``/``surname``...) are composed into the
contact's name ("Ada Lovelace") wherever the row has no full name. A file that cannot be read at
all raises :class:`UnreadableFile` with a precise reason; a single bad row (ragged) becomes a
:class:`Row` with an error and the rest of the file goes on.
"""

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import BinaryIO

FIELDS = ("email", "name", "phone", "company")
ALIASES = {
    "email": {"email", "e mail", "email address", "e mail address", "mail"},
    "name": {"name", "full name", "fullname", "contact", "contact name", "display name"},
    "phone": {"phone", "phone number", "telephone", "tel", "mobile", "mobile phone", "cell"},
    "company": {"company", "company name", "organisation", "organization", "org", "employer"},
}
# Parts of a name, composed into ``name`` in this order when the row has no full name.
NAME_PARTS = {
    "first_name": {"first name", "firstname", "given name", "givenname", "forename", "first"},
    "last_name": {"last name", "lastname", "surname", "family name", "familyname", "last"},
}
DELIMITERS = (",", ";", "\t")
DEFAULT_MAX_LINE_BYTES = 10_000

# Leading bytes of formats people upload by mistake.
SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (perhaps an Excel workbook)",
    b"\xd0\xcf\x11\xe0": "an old Office document (perhaps an Excel workbook)",
    b"\x1f\x8b": "a gzip archive",
}


class UnreadableFile(Exception):
    """The file cannot be imported at all; ``str()`` is the reason shown to the user."""


@dataclass(frozen=True)
class Row:
    """One data record: its first line, its values by field, or why it is unusable."""

    line: int
    values: dict[str, str] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class Layout:
    delimiter: str
    columns: dict[str, int]
    ignored: list[str]
    width: int


def _normalise_header(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower()).strip()


def _field_of(header: str) -> str | None:
    key = _normalise_header(header)
    return next((f for f, names in (ALIASES | NAME_PARTS).items() if key in names), None)


def _check_not_binary(head: bytes) -> None:
    if not head.removeprefix(b"\xef\xbb\xbf").strip():
        raise UnreadableFile("the file is empty")
    for signature, kind in SIGNATURES.items():
        if head.startswith(signature):
            raise UnreadableFile(f"the file is {kind}, not a CSV text file")
    if b"\x00" in head:
        raise UnreadableFile("the file is binary, not a CSV text file")


def _lines(binary: BinaryIO, max_line_bytes: int) -> Iterator[str]:
    """Decoded physical lines, checking each one's length and encoding with its number."""
    number = 0
    # Bound once: a Django File reaches its file's readline through a proxy on every access.
    readline = binary.readline
    while True:
        raw = readline(max_line_bytes + 1)
        if not raw:
            return
        number += 1
        if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
            raise UnreadableFile(f"line {number} is longer than {max_line_bytes} bytes")
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            byte = raw[error.start : error.start + 1].hex()
            raise UnreadableFile(
                f"the file is not UTF-8 text: line {number} has the byte 0x{byte} "
                f"(save it as UTF-8 and upload it again)"
            ) from None


def _layout(header: list[str], delimiter: str) -> Layout:
    columns: dict[str, int] = {}
    ignored = []
    for index, name in enumerate(header):
        target = _field_of(name)
        if target is None:
            if name.strip():
                ignored.append(name.strip())
            continue
        if target in columns:
            raise UnreadableFile(
                f"the header has two {target} columns: "
                f"{header[columns[target]].strip()!r} and {name.strip()!r}"
            )
        columns[target] = index
    if "email" not in columns:
        found = ", ".join(repr(h.strip()) for h in header if h.strip()) or "none"
        raise UnreadableFile(
            f"the header has no email column (found {found}; "
            f"expected one of: email, e-mail, email address, mail)"
        )
    return Layout(delimiter=delimiter, columns=columns, ignored=ignored, width=len(header))


class CsvFile:
    """``CsvFile(binary)`` checks the start of the file; :meth:`rows` streams the rest."""

    def __init__(self, binary: BinaryIO, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES):
        head = binary.read(8192)
        binary.seek(0)
        _check_not_binary(head)
        lines = _lines(binary, max_line_bytes)
        leading = []  # blank lines before the header, kept so line numbers stay exact
        for line in lines:
            leading.append(line)
            if line.strip():
                break
        header_line = leading[-1] if leading else ""
        delimiter = max(DELIMITERS, key=header_line.count)
        self._reader = csv.reader(chain(leading, lines), delimiter=delimiter)
        header = self._next_record()
        while header is not None and not any(value.strip() for value in header):
            header = self._next_record()
        if header is None:
            raise UnreadableFile("the file is empty")
        self.header = header
        self.layout = _layout(header, delimiter)
        columns = self.layout.columns
        # Worked out once for the file rather than for every row.
        self._fields = [(f, i) for f, i in columns.items() if f in ALIASES]
        self._name_parts = [columns[f] for f in NAME_PARTS if f in columns]

    def _next_record(self) -> list[str] | None:
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except csv.Error as error:
            raise UnreadableFile(f"line {self._reader.line_num}: {error}") from None

    def records(self) -> Iterator[tuple[int, list[str]]]:
        """Each non-blank data record as written, with its first physical line's number."""
        previous_end = self._reader.line_num
        while (record := self._next_record()) is not None:
            line, previous_end = previous_end + 1, self._reader.line_num
            if any(map(str.strip, record)):
                yield line, record

    def rows(self) -> Iterator[Row]:
        """Each data record's values by field, or why it is unusable (a ragged record)."""
        for line, record in self.records():
            if len(record) != self.layout.width:
                yield Row(
                    line=line,
                    error=f"expected {self.layout.width} fields as in the header, "
                    f"found {len(record)}",
                )
                continue
            yield Row(line=line, values=self._values(record))

    def _values(self, record: list[str]) -> dict[str, str]:
        values = {f: record[i] for f, i in self._fields}
        if self._name_parts and not values.get("name", "").strip():
            parts = (record[i].strip() for i in self._name_parts)
            composed = " ".join(part for part in parts if part)
            if composed:
                values["name"] = composed
        return values

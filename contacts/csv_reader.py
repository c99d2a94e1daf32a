"""Streaming CSV reading for contact imports: dialect, header, rows with line numbers.

Accepts UTF-8 with or without a BOM; comma, semicolon or tab (guessed from the header, or
named by an Excel ``sep=;`` first line); header names matched case-insensitively with common
aliases. A first-name and a last-name column (``first_name``/``last_name``, ``given
name``/``surname``...) are composed into the contact's name ("Ada Lovelace") wherever the row
has no full name. A file that cannot be read at all raises :class:`UnreadableFile` with a
precise reason (a quoted field never closed is one: it would swallow the rest of the file);
a single bad record (ragged, or with a carriage return inside an unquoted value) becomes a
:class:`Row` with an error and the rest of the file goes on. A NUL character in a value is
left to the row's validation, which refuses that row alone.
"""

import csv
import re
from collections.abc import Iterable, Iterator
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
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# Bytes text never holds (whitespace controls and ESC aside): with a NUL, a binary file.
CONTROL_BYTES = re.compile(rb"[\x01-\x08\x0e-\x1a\x1c-\x1f]")
# A carriage return with text after it: in a file without line feeds, it ends the lines.
OLD_MAC_LINE_END = re.compile(rb"\r[^\r]")
# What the csv module says of a carriage return inside an unquoted value (lines end at LF).
CR_IN_UNQUOTED_VALUE = "new-line character seen in unquoted field"
STRAY_CARRIAGE_RETURN = (
    "a value has a carriage return (CR) in the middle of it; "
    "remove it, or put the value in double quotes"
)
# Excel's first line naming the delimiter, such as ``sep=;`` (some tools quote it).
SEPARATOR_LINE = re.compile(r'"?sep=(.*?)"?', re.IGNORECASE)


class UnreadableFile(Exception):
    """The file cannot be imported at all; ``str()`` is the reason shown to the user."""


class _StrayCarriageReturn(Exception):
    """A record has a carriage return inside an unquoted value; ``lines`` are its lines."""

    def __init__(self, line: int, lines: list[str]):
        super().__init__(line)
        self.line, self.lines = line, lines


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


def _is_utf16(head: bytes) -> bool:
    """A byte-order mark, or ASCII text with a zero byte before or after every character."""
    if head.startswith(UTF16_BOMS):
        return True
    sample = head[: min(len(head), 64) // 2 * 2]
    if len(sample) < 8:
        return False
    even, odd = sample[0::2], sample[1::2]
    return (b"\x00" not in even and not odd.strip(b"\x00")) or (
        b"\x00" not in odd and not even.strip(b"\x00")
    )


def _is_binary(head: bytes) -> bool:
    """NUL bytes among control bytes or bytes that are not UTF-8. A NUL in text that is
    otherwise clean is a stray character in one value (some CRM exports have them): that
    row is refused when it is validated, and the rest of the file is imported."""
    if b"\x00" not in head:
        return False
    if CONTROL_BYTES.search(head):
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # The head may end inside a character: only an error before its last 3 bytes counts.
        return error.start < len(head) - 3
    return False


def _check_start_of_file(head: bytes) -> None:
    """Refuse what is not a CSV text file at all, judged by its first bytes."""
    if not head.removeprefix(b"\xef\xbb\xbf").strip():
        raise UnreadableFile("the file is empty")
    for signature, kind in SIGNATURES.items():
        if head.startswith(signature):
            raise UnreadableFile(f"the file is {kind}, not a CSV text file")
    if _is_utf16(head):
        raise UnreadableFile(
            "the file is UTF-16 text; save it as UTF-8 (in Excel: CSV UTF-8) and upload it again"
        )
    if _is_binary(head):
        raise UnreadableFile("the file is binary, not a CSV text file")
    if b"\n" not in head and OLD_MAC_LINE_END.search(head):
        raise UnreadableFile(
            "the file's lines end with a carriage return alone (an old Mac format); "
            "save it as CSV UTF-8 and upload it again"
        )


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


def _declared_delimiter(line: str, number: int) -> str | None:
    """The delimiter an Excel ``sep=`` line names, or None if ``line`` is not one."""
    match = SEPARATOR_LINE.fullmatch(line.rstrip("\r\n"))
    if match is None:
        return None
    delimiter = match[1]
    if len(delimiter) != 1 or delimiter == '"' or delimiter.isalnum():
        raise UnreadableFile(
            f"line {number}: {line.strip()!r} names no usable separator "
            f"(write sep=, or sep=; or remove the line)"
        )
    return delimiter


def _layout(header: list[str], delimiter: str) -> Layout:
    columns: dict[str, int] = {}
    ignored = []
    for index, name in enumerate(header):
        if "\x00" in name:
            # A header is no row to refuse alone; and its name would reach the database.
            raise UnreadableFile(f"the header's column {name.strip()!r} has a NUL character")
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
        _check_start_of_file(head)
        lines = _lines(binary, max_line_bytes)
        leading = []  # blank lines before the header, kept so line numbers stay exact
        for line in lines:
            leading.append(line)
            if line.strip():
                break
        header_line = leading[-1] if leading else ""
        delimiter = _declared_delimiter(header_line, len(leading))
        if delimiter is None:
            delimiter = max(DELIMITERS, key=header_line.count)
        else:
            leading[-1] = "\n"  # read as a blank line, so the header comes next
        self._at_end = False
        self._delimiter = delimiter
        self._record_lines: list[str] = []  # the physical lines of the record being read
        self._reader = csv.reader(self._marking_the_end(leading, lines), delimiter=delimiter)
        try:
            header = self._next_record()
            while header is not None and not any(value.strip() for value in header):
                header = self._next_record()
        except _StrayCarriageReturn as stray:
            raise UnreadableFile(f"line {stray.line}: {STRAY_CARRIAGE_RETURN}") from None
        if header is None:
            raise UnreadableFile("the file is empty")
        self.header = header
        self.layout = _layout(header, delimiter)
        columns = self.layout.columns
        # Worked out once for the file rather than for every row.
        self._fields = [(f, i) for f, i in columns.items() if f in ALIASES]
        self._name_parts = [columns[f] for f in NAME_PARTS if f in columns]

    def _marking_the_end(self, *parts: Iterable[str]) -> Iterator[str]:
        record_lines = self._record_lines
        for line in chain(*parts):
            record_lines.append(line)
            yield line
        self._at_end = True

    def _next_record(self) -> list[str] | None:
        first_line = self._reader.line_num + 1
        self._record_lines.clear()
        try:
            record = next(self._reader)
        except StopIteration:
            return None
        except csv.Error as error:
            if str(error).startswith(CR_IN_UNQUOTED_VALUE) and self._ends_at_the_line_end():
                raise _StrayCarriageReturn(self._reader.line_num, self._record_lines) from None
            raise UnreadableFile(self._reason(error, first_line)) from None
        if self._at_end:
            # A record ends at a line end, unless a quoted field in it is still open when
            # the lines run out: the csv module then returns it with the rest of the file
            # as that field's value. The open field is the last; earlier ones may span lines.
            opened = first_line + sum(value.count("\n") for value in record[:-1])
            raise UnreadableFile(f"line {opened}: a quoted field is never closed")
        return record

    def _ends_at_the_line_end(self) -> bool:
        """Whether a record the csv module refused for a carriage return ends with its line.

        The module drops the rest of the line and starts afresh on the next one. That is
        where the record ends unless the rest opened a quoted value that runs on: its lines
        would then be read as records of their own. So only a rest without a quote (after
        the line's first CR, to be safe) is left to refuse this row alone.
        """
        line = self._record_lines[-1] if self._record_lines else ""
        return '"' not in line[line.find("\r") :]

    def _reason(self, error: csv.Error, first_line: int) -> str:
        """The csv module's error in the user's words."""
        line = self._reader.line_num
        if str(error).startswith(CR_IN_UNQUOTED_VALUE):
            return f"line {line}: {STRAY_CARRIAGE_RETURN}"
        if str(error).startswith("field larger than field limit"):
            # Lines are shorter than this limit, so only a quoted field spanning lines
            # reaches it.
            return (
                f"line {first_line}: a quoted field runs on for more than "
                f"{csv.field_size_limit():,} characters, to line {line} "
                f"(is its closing quote missing?)"
            )
        return f"line {line}: {error}"

    def records(self) -> Iterator[tuple[int, list[str], str]]:
        """Each non-blank data record as written, with its first physical line's number and
        why it cannot be read ("" when it can)."""
        previous_end = self._reader.line_num
        while True:
            try:
                record, problem = self._next_record(), ""
            except _StrayCarriageReturn as stray:
                record, problem = self._as_written(stray.lines), STRAY_CARRIAGE_RETURN
            if record is None:
                return
            line, previous_end = previous_end + 1, self._reader.line_num
            if problem or any(map(str.strip, record)):
                yield line, record, problem

    def _as_written(self, lines: list[str]) -> list[str]:
        """The values of a record the csv module refused, its carriage returns kept: the
        refused rows' copy gives them back quoted, as the message asks."""
        text = "".join(lines).removesuffix("\n").removesuffix("\r")
        stand_in = next((chr(c) for c in range(0xE000, 0xF900) if chr(c) not in text), None)
        if stand_in is None:  # every one of them in the record: as one value
            return [text]
        try:
            rows = csv.reader([text.replace("\r", stand_in)], delimiter=self._delimiter)
            values = next(rows, [text])
        except csv.Error:  # some other flaw besides: the record as one value
            return [text]
        return [value.replace(stand_in, "\r") for value in values]

    def rows(self) -> Iterator[Row]:
        """Each data record's values by field, or why it is unusable (ragged, a stray CR)."""
        for line, record, problem in self.records():
            if problem:
                yield Row(line=line, error=problem)
                continue
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

"""Files that are CSV only in part: NUL characters, quotes never closed, stray carriage
returns, UTF-16, Excel's ``sep=`` line. Each import either refuses the bad row, naming its
field, and imports every other row, or fails at once with a reason the user can act on.

The split runs eagerly, its batches go through real Kafka and are imported as the importer
would; one test runs the whole pipeline (worker, importer, relays) in their own processes.
"""

import pytest
from django.db import transaction

from contacts.batch_import import import_batches
from contacts.events import ImportBatch
from contacts.models import Contact
from eventplatform.kafka.config import topic_name
from eventplatform.kafka.envelope import Event
from tests.helpers import read_topic, wait_until

from .conftest import contacts_csv, csv_bytes, post_import

pytestmark = pytest.mark.django_db

CR_REASON = (
    "a value has a carriage return (CR) in the middle of it; "
    "remove it, or put the value in double quotes"
)


@pytest.fixture
def subprocess_env(subprocess_env, media_root):
    """The pipeline's processes read the uploads where this test stores them."""
    return {**subprocess_env, "MEDIA_ROOT": str(media_root)}


def upload(client, content: bytes, channel: str) -> str:
    response = post_import(client, content, channel)
    assert response.status_code == 202, response.content
    return response.json()["job_id"]


@pytest.fixture
def run_import(
    kafka, eager_celery, media_root, user, channel, client_for, django_capture_on_commit_callbacks
):
    """Upload ``content`` as ``user``, import every batch it produced, and return what the
    status API then says of the import."""
    client = client_for(user)

    def run(content: bytes) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            job_id = upload(client, content, channel)
        for record in read_topic(topic_name("contacts.import-jobs")):
            with transaction.atomic():
                import_batches(batches=[ImportBatch.from_event(Event.decode(record.value))])
        return client.get(f"/api/contacts/imports/{job_id}?errors_page_size=100").json()

    return run


def totals(status: dict) -> tuple:
    return status["status"], status["total_rows"], status["imported"], status["failed"]


def stored(user) -> dict[str, str]:
    return dict(Contact.objects.filter(owner=user).values_list("email", "name"))


# NUL characters


@pytest.mark.django_db(transaction=True)
def test_a_nul_after_the_first_8_kib_refuses_that_row_and_the_pipeline_completes(
    pipeline, user, channel, client_for
):
    # 600 rows, two batches; the NUL is in the name of the last row, far past 8 KiB.
    content = contacts_csv(599) + b"user600@example.com,Person\x00600,,\n"
    assert content.index(b"\x00") > 8192
    client = client_for(user)
    job_id = upload(client, content, channel)

    def finished() -> dict | None:
        status = client.get(f"/api/contacts/imports/{job_id}").json()
        return status if status["status"] in {"completed", "failed"} else None

    status = wait_until(finished, timeout=60, message="the import never finished")
    assert totals(status) == ("completed", 600, 599, 1)
    assert status["row_errors"]["items"] == [
        {"line": 601, "reason": "name contains a NUL character"}
    ]
    assert Contact.objects.filter(owner=user).count() == 599
    assert not Contact.objects.filter(email="user600@example.com").exists()


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("ada@exa\x00mple.com,Ada,1,ACME", "email contains a NUL character"),
        ("ada@example.com,Ada\x00\x00\x00,1,ACME", "name contains a NUL character"),
        ("ada@example.com,Ada,\x001,ACME", "phone contains a NUL character"),
        ("ada@example.com,Ada,1,AC\x00ME", "company contains a NUL character"),
    ],
    ids=["email", "name", "phone", "company"],
)
def test_a_nul_near_the_top_of_a_text_file_refuses_that_row_only(user, run_import, row, reason):
    content = csv_bytes(
        "email,name,phone,company",
        ["bob@example.com,Bob,2,B", row, "cy@example.com,Cy,3,C"],
    )
    status = run_import(content)
    assert totals(status) == ("completed", 3, 2, 1)
    assert status["row_errors"]["items"] == [{"line": 3, "reason": reason}]
    assert stored(user) == {"bob@example.com": "Bob", "cy@example.com": "Cy"}


def test_a_nul_in_a_first_name_column_is_reported_as_the_name(user, run_import):
    content = csv_bytes("email,first_name,last_name", ["ada@example.com,A\x00da,Lovelace"])
    status = run_import(content)
    assert totals(status) == ("completed", 1, 0, 1)
    assert status["row_errors"]["items"] == [{"line": 2, "reason": "name contains a NUL character"}]


def test_a_nul_in_an_ignored_column_is_ignored_with_the_column(user, run_import):
    content = csv_bytes("email,name,notes", ["ada@example.com,Ada,a\x00b"])
    status = run_import(content)
    assert totals(status) == ("completed", 1, 1, 0)
    assert status["ignored_columns"] == ["notes"]
    assert stored(user) == {"ada@example.com": "Ada"}


def test_a_nul_in_the_header_fails_the_import(user, run_import):
    status = run_import(csv_bytes("email,name,no\x00tes", ["ada@example.com,Ada,x"]))
    assert status["status"] == "failed"
    assert status["failure"] == "the header's column 'no\\x00tes' has a NUL character"


@pytest.mark.parametrize(
    "content",
    [
        b"email\nx@example.com\n\x00\x01\x02binary",
        b"SQLite format 3\x00\x10\x00\x01\x01\x00@  \x00\x00\x00\x02",
        b"email,name\n" + bytes(range(256)) * 4,
    ],
    ids=["control-bytes", "sqlite", "every-byte"],
)
def test_a_file_that_really_is_binary_is_still_refused_as_binary(user, run_import, content):
    status = run_import(content)
    assert (status["status"], status["failure"]) == (
        "failed",
        "the file is binary, not a CSV text file",
    )


# Quotes


def test_a_quote_never_closed_fails_the_import_naming_its_line(user, run_import):
    content = csv_bytes(
        "email,name",
        ['ada@example.com,"Ada Lovelace', "bob@example.com,Bob", "cy@example.com,Cy"],
    )
    status = run_import(content)
    assert (status["status"], status["failure"]) == (
        "failed",
        "line 2: a quoted field is never closed",
    )
    assert stored(user) == {}


def test_the_line_of_a_quote_never_closed_counts_the_lines_of_quoted_values_before_it(
    user, run_import
):
    content = csv_bytes(
        "email,name,company",
        [
            'ada@example.com,"Ada\nLovelace",ACME',  # lines 2-3, a quoted name on two lines
            'bob@example.com,"Bob\nthe Builder","Bob\'s',  # line 4; the quote opens on line 5
            "cy@example.com,Cy,C",
        ],
    )
    status = run_import(content)
    assert status["failure"] == "line 5: a quoted field is never closed"


def test_a_quote_never_closed_in_a_large_file_names_where_its_record_starts(user, run_import):
    rows = [f"user{n}@example.com,Person {n}" for n in range(1, 6001)]
    rows[9] = 'user10@example.com,"Person 10'
    status = run_import(csv_bytes("email,name", rows))
    assert status["status"] == "failed"
    assert status["failure"].startswith(
        "line 11: a quoted field runs on for more than 131,072 characters, to line "
    )
    assert status["failure"].endswith("(is its closing quote missing?)")


def test_quoted_values_closed_on_the_last_line_are_imported(user, run_import):
    content = b'email,name\nada@example.com,"Ada\nLovelace"'  # no line end after the quote
    status = run_import(content)
    assert totals(status) == ("completed", 1, 1, 0)
    assert stored(user) == {"ada@example.com": "Ada\nLovelace"}


# Carriage returns and encodings


def test_a_carriage_return_inside_an_unquoted_value_refuses_that_row_in_plain_words(
    user, run_import
):
    content = (
        b'email,name\nada@example.com,Ada\rLovelace\nbob@example.com,"Bob\nBuilder"\n'
        b"cy@example.com,Cy\r\n"
    )
    status = run_import(content)
    assert totals(status) == ("completed", 3, 2, 1)
    assert status["row_errors"]["items"] == [{"line": 2, "reason": CR_REASON}]
    assert stored(user) == {"bob@example.com": "Bob\nBuilder", "cy@example.com": "Cy"}


def test_a_carriage_return_before_a_quoted_value_that_runs_on_fails_the_import(user, run_import):
    # The csv module drops the rest of a line with a stray CR; had that rest opened a quoted
    # value running onto the next lines, those would be read as contacts of their own.
    content = b'email,name,notes\nann@example.com,An\rn,"Met at\nbob@example.com,Bob,ok"\n'
    status = run_import(content)
    assert (status["status"], status["failure"]) == (
        "failed",
        f"line 2: {CR_REASON}",
    )
    assert stored(user) == {}


def test_a_refused_record_holding_every_private_use_character_is_refused_alone(user, run_import):
    # Its copy for the refused rows hides the CRs behind a character the record lacks.
    private = "".join(chr(c) for c in range(0xE000, 0xF900))
    spread = "\n".join(private[i : i + 2000] for i in range(0, len(private), 2000))
    content = f'email,name\nann@example.com,"{spread}"x\ry\nbob@example.com,Bob\n'.encode()
    status = run_import(content)
    assert totals(status) == ("completed", 2, 1, 1)
    assert status["row_errors"]["items"][0]["line"] == 2
    assert stored(user) == {"bob@example.com": "Bob"}


def test_a_carriage_return_inside_a_header_name_fails_the_import(user, run_import):
    status = run_import(b"email,na\rme\nada@example.com,Ada\n")
    assert (status["status"], status["failure"]) == (
        "failed",
        f"line 1: {CR_REASON}",
    )


def test_windows_line_ends_are_imported(user, run_import):
    status = run_import(contacts_csv(3).replace(b"\n", b"\r\n"))
    assert totals(status) == ("completed", 3, 3, 0)


def test_an_old_mac_file_fails_the_import_saying_how_to_save_it(user, run_import):
    status = run_import(b"email,name\rada@example.com,Ada\rbob@example.com,Bob\r")
    assert (status["status"], status["failure"]) == (
        "failed",
        "the file's lines end with a carriage return alone (an old Mac format); "
        "save it as CSV UTF-8 and upload it again",
    )


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_file_fails_the_import_saying_to_save_it_as_utf8(user, run_import, encoding):
    # Python's "utf-16" writes a byte-order mark; the other two (Excel's "Unicode text"
    # saved by some tools) do not.
    content = "email\tname\nada@example.com\tAda\n".encode(encoding)
    status = run_import(content)
    assert (status["status"], status["failure"]) == (
        "failed",
        "the file is UTF-16 text; save it as UTF-8 (in Excel: CSV UTF-8) and upload it again",
    )


# Excel's sep= line


@pytest.mark.parametrize(
    ("first_line", "delimiter"),
    [("sep=;", ";"), ("sep=,", ","), ('"sep=|"', "|"), ("SEP=\t", "\t")],
    ids=["semicolon", "comma", "quoted-pipe", "tab"],
)
def test_an_excel_sep_line_names_the_delimiter_and_line_numbers_stay_exact(
    user, run_import, first_line, delimiter
):
    rows = [["email", "name", "company"], ["ada@example.com", "Ada", "ACME"], ["nobody", "N", ""]]
    content = csv_bytes(first_line, [delimiter.join(row) for row in rows])
    status = run_import(content)
    assert totals(status) == ("completed", 2, 1, 1)
    # Line 1 is the sep= line, the header line 2.
    assert status["row_errors"]["items"] == [{"line": 4, "reason": "invalid email 'nobody'"}]
    assert stored(user) == {"ada@example.com": "Ada"}


def test_a_sep_line_naming_no_usable_delimiter_fails_the_import_saying_what_to_write(
    user, run_import
):
    status = run_import(csv_bytes("sep=ab", ["email,name", "ada@example.com,Ada"]))
    assert (status["status"], status["failure"]) == (
        "failed",
        "line 1: 'sep=ab' names no usable separator (write sep=, or sep=; or remove the line)",
    )

"""``manage.py kv``: dump/load round trip, get/set/delete, seed, and precise errors."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from kvconfig.stores import get_store
from tests.helpers import wait_until

from .conftest import topic_records


def _run(*args) -> str:
    out = StringIO()
    call_command("kv", *args, stdout=out)
    return out.getvalue()


def test_set_get_delete(kafka):
    assert _run("set", "supported-countries", "SS", '{"name": "South Sudan"}') == (
        '{"name": "South Sudan"}\n'
    )
    assert json.loads(_run("get", "supported-countries", "SS")) == {"name": "South Sudan"}
    assert _run("delete", "supported-countries", "SS") == "deleted SS\n"
    with pytest.raises(CommandError, match="no key 'SS' in namespace 'supported-countries'"):
        _run("get", "supported-countries", "SS")


def test_dump_and_load_round_trip_in_other_processes(kafka, manage, tmp_path):
    store = get_store("supported-countries")
    store.put("SS", {"name": "South Sudan"}, editor="t")
    store.put("FR", {"name": "France"}, editor="t")
    dump = manage("kv", "dump", "supported-countries").stdout
    assert [json.loads(line)["key"] for line in dump.splitlines()] == ["FR", "SS"]

    backup = tmp_path / "backup.jsonl"
    backup.write_text(dump)
    store.delete("SS", editor="t")
    store.put("DE", {"name": "Germany"}, editor="t")
    result = manage("kv", "load", "supported-countries", str(backup))
    assert result.stdout.strip() == "1 written, 1 unchanged"
    assert "reading " + str(backup) in result.stderr  # progress bars on stderr
    assert "writing supported-countries" in result.stderr and "1/1" in result.stderr
    # This process's store reads the other process's writes on its own thread.
    wait_until(lambda: store.get("SS") == {"name": "South Sudan"}, timeout=10)
    assert store.get("DE") == {"name": "Germany"}  # a plain load merges


def test_load_replace_makes_the_namespace_equal_to_the_file(kafka, manage, tmp_path):
    store = get_store("supported-countries")
    store.put_many(
        [("SS", {"name": "South Sudan"}), ("FR", {"name": "France"}), ("DE", {"name": "x"})],
        editor="t",
    )
    backup = tmp_path / "backup.jsonl"
    backup.write_text(
        '{"key": "FR", "value": {"name": "France"}}\n{"key": "DE", "value": {"name": "Germany"}}\n'
    )
    result = manage("kv", "load", "--replace", "supported-countries", str(backup))
    assert result.stdout.strip() == "1 written, 1 unchanged, 1 deleted"
    wait_until(
        lambda: dict(store.snapshot()) == {"FR": {"name": "France"}, "DE": {"name": "Germany"}},
        timeout=10,
    )
    assert topic_records("supported-countries")[-1] == ("SS", None)


def test_load_of_a_key_named_twice_writes_its_last_value(kafka, tmp_path):
    store = get_store("supported-countries")
    store.put("FR", {"name": "France"}, editor="t")
    path = tmp_path / "appended.jsonl"
    path.write_text(
        '{"key": "FR", "value": {"name": "Republique francaise"}}\n'
        '{"key": "SS", "value": {"name": "South Sudan"}}\n'
        '{"key": "FR", "value": {"name": "France"}}\n'
    )
    assert _run("load", "supported-countries", str(path)).strip() == "1 written, 1 unchanged"
    assert dict(store.snapshot()) == {"FR": {"name": "France"}, "SS": {"name": "South Sudan"}}


def test_load_into_the_derived_store_is_refused(kafka, manage, tmp_path):
    backup = tmp_path / "zones.jsonl"
    backup.write_text(
        '{"key": "SS", "value": {"zones": ["Africa/Juba"], "primary": "Africa/Juba"}}\n'
    )
    result = manage("kv", "load", "--replace", "time-zones", str(backup), check=False)
    assert result.returncode == 1
    assert "time-zones is derived: its values come from derive_time_zones" in result.stderr
    assert topic_records("time-zones") == []


def test_seed_only_when_nothing_was_ever_written(kafka, manage):
    assert manage("kv", "seed").stdout.strip() == "seeded 7 supported countries"
    assert manage("kv", "seed").stdout.strip() == "supported-countries has 7 entries: not seeding"
    assert get_store("supported-countries")["JP"] == {"name": "Japan"}
    for key in list(get_store("supported-countries").keys()):
        manage("kv", "delete", "supported-countries", key)
    # Emptied by hand is a choice: the seed does not bring the deleted keys back.
    assert manage("kv", "seed").stdout.strip() == (
        "supported-countries was emptied by hand: not seeding"
    )
    wait_until(lambda: len(get_store("supported-countries")) == 0, timeout=10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "supported-countries", "usa", '{"name": "x"}'), "key 'usa' is not an ISO"),
        (("set", "supported-countries", "U1", '{"name": "x"}'), "key 'U1' is not an ISO"),
        (("set", "supported-countries", "", '{"name": "x"}'), "key is required"),
        (("set", "supported-countries", "SS", '{"title": "x"}'), "unknown field 'title'"),
        (("set", "supported-countries", "SS", "South Sudan"), "VALUE is not JSON"),
        (
            ("set", "supported-countries", "SS", '{"name": "\\ud800"}'),
            "value holds a lone surrogate",
        ),
        (
            ("set", "supported-countries", "BV", '{"name": "x"}'),
            r"BV \(Bouvet Island\) has no time zones in the tz database",
        ),
        (
            ("set", "supported-countries", "SS", json.dumps({"name": "x" * 5000})),
            "name: must be at most 100 characters",
        ),
        (
            ("set", "time-zones", "SS", '{"zones": ["Africa/Juba"], "primary": "Africa/Juba"}'),
            "time-zones is derived: its values come from derive_time_zones",
        ),
        (("delete", "time-zones", "SS"), "time-zones is derived"),
        (("set", "nope", "SS", "{}"), "unknown namespace 'nope'"),
        (("dump", "nope"), "unknown namespace 'nope'"),
        (("delete", "supported-countries", "SS"), "no key 'SS'"),
    ],
)
def test_bad_input_is_a_command_error_and_writes_nothing(kafka, args, message):
    with pytest.raises(CommandError, match=message):
        _run(*args)
    assert topic_records("supported-countries") == []
    assert topic_records("time-zones") == []


def test_load_refuses_a_file_with_one_bad_line_and_writes_nothing(kafka, tmp_path):
    path = tmp_path / "countries.jsonl"
    path.write_text(
        '{"key": "SS", "value": {"name": "South Sudan"}}\n\n'
        '{"key": "usa", "value": {"name": "United States"}}\n'
    )
    with pytest.raises(CommandError, match="line 3: key 'usa' is not an ISO .*nothing written"):
        _run("load", "supported-countries", str(path))
    path.write_text("not json\n")
    with pytest.raises(CommandError, match="line 1: not JSON"):
        _run("load", "supported-countries", str(path))
    latin_1 = '{"key": "SS", "value": {"name": "x"}}\n{"key": "DE", "value": {"name": "Germäny"}}\n'
    path.write_bytes(latin_1.encode("latin-1"))  # an export from an older tool
    with pytest.raises(CommandError, match="line 2: not UTF-8 text .* nothing written"):
        _run("load", "supported-countries", str(path))
    with pytest.raises(CommandError, match="cannot read"):
        _run("load", "supported-countries", str(tmp_path / "missing.jsonl"))
    assert topic_records("supported-countries") == []


def test_a_user_error_ends_in_one_line_and_exit_code_1(kafka, manage):
    result = manage("kv", "set", "supported-countries", "usa", '{"name": "x"}', check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "CommandError: key 'usa' is not an ISO 3166 alpha-2 code (two letters, e.g. 'SS')"
    ]
    assert result.stdout == ""

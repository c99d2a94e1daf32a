"""Each pytest-xdist worker reads and writes a Redis database of its own."""

from tests.worker_isolation import redis_url_of_worker


def test_a_worker_moves_up_from_the_database_the_url_names():
    assert redis_url_of_worker("redis://127.0.0.1:6379/7", 1) == "redis://127.0.0.1:6379/8"
    assert redis_url_of_worker("redis://127.0.0.1:6379", 2) == "redis://127.0.0.1:6379/2"
    assert redis_url_of_worker("redis://:secret@cache:6380/0", 1) == "redis://:secret@cache:6380/1"


def test_a_unix_socket_url_chooses_its_database_in_the_query():
    assert redis_url_of_worker("unix:///tmp/r/redis.sock", 1) == "unix:///tmp/r/redis.sock?db=1"
    assert (
        redis_url_of_worker("unix:///tmp/r/redis.sock?db=3&x=y", 2)
        == "unix:///tmp/r/redis.sock?db=5&x=y"
    )

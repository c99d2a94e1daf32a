"""One platform per var/: the lock names its holder and is free again once released."""

import os

import pytest

from eventplatform.embedded.lock import PlatformAlreadyRunning, PlatformLock


def test_a_second_holder_is_refused_naming_the_first_until_it_lets_go(tmp_path):
    first = PlatformLock(tmp_path).acquire(port=8123)
    with pytest.raises(PlatformAlreadyRunning) as refused:
        PlatformLock(tmp_path).acquire(port=9000)
    assert f"(pid {os.getpid()}, http://127.0.0.1:8123/)" in str(refused.value)
    first.release()
    second = PlatformLock(tmp_path).acquire(port=9000)
    assert '"port": 9000' in (tmp_path / "platform.lock").read_text()
    second.release()

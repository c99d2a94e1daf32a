"""Commands end a user's mistake in one line and exit code 1, never a traceback."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_a_command_against_a_database_never_migrated_says_so_in_one_line(tmp_path):
    never_migrated = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "create_api_token", "somebody"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": never_migrated, "VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "CommandError: OperationalError: no such table: auth_user"
        " (is the database migrated? run manage.py migrate)"
    ]
    assert "Traceback" not in result.stderr

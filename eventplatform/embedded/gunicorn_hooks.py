"""gunicorn settings hooks (``-c python:eventplatform.embedded.gunicorn_hooks``).

A worker that outlives its master is an orphan holding the database and the port's
clients; gunicorn's own check notices only once the worker has booted, so the kernel is
asked to kill each worker with its master instead.
"""

import os

from eventplatform.embedded.process import die_with_parent


def post_fork(server, worker) -> None:
    die_with_parent(os.getppid())

"""The embedded development stack behind ``runplatform`` and ``python3 dev.py run``.

``process`` (the one child lifecycle: start, wait until ready, stop), ``ports``, ``broker``
(the memory-only Kafka-compatible broker) and ``redis_server``, ``supervisor`` (keeps the
Procfile processes up), ``runner`` (what ``runplatform`` does, in order), ``setup`` (its
set-up steps), ``journal`` (carries the compacted topics across broker restarts), ``lock``
(one platform per ``var/``) and ``gunicorn_hooks`` (gunicorn's workers die with their
master; the Procfile uses it everywhere).
"""

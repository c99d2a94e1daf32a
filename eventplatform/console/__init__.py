"""The live operations console in the admin: what the platform is doing, and its DLQs.

A sampler thread in the web process collects a snapshot of topics, consumer groups, the
outbox, DLQs, KV stores, the replica and the supervised processes every second, and keeps
15 minutes of lag and throughput per group; staff browsers receive each snapshot over a
websocket (:mod:`.consumers`), and act on DLQ records through the views in :mod:`.views`.
"""

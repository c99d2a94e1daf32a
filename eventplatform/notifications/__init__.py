"""Websocket notifications: ``notify()`` → Kafka → relay → Channels groups → browsers.

- :mod:`.tokens`: channel tokens the server issues to a user (signed, expiring, bound);
- :mod:`.services`: ``notify`` (straight to Kafka) and ``notify_in_transaction`` (outbox);
- :mod:`.history`: per-channel sequence numbers and a short replay history in Redis;
- :mod:`.relay`: the ``relay_notifications`` consumer, Kafka → history → Channels group;
- :mod:`.consumers`: the websocket endpoint, replay on reconnect, then the live stream.
"""

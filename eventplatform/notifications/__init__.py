"""Websocket notifications: ``notify()`` → Kafka → relay → Channels groups → browsers."""

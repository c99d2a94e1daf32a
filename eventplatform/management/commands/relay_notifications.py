from eventplatform.kafka.command import ConsumerCommand
from eventplatform.notifications.relay import NotificationRelay


class Command(ConsumerCommand):
    help = "Relay the notifications topic to websocket channels (Channels groups), with replay."
    consumer_class = NotificationRelay

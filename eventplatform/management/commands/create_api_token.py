from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from eventplatform.cli import PlatformCommand
from eventplatform.models import ApiToken


class Command(PlatformCommand):
    help = "Create an API bearer token for USERNAME; the token is printed once, stored hashed."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label to recognise the token by")
        parser.add_argument(
            "--read-only",
            action="store_true",
            help="the token may only read (GET); every write with it is refused with 403",
        )

    def handle(self, *args, **options):
        try:
            user = get_user_model().objects.get(username=options["username"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {options['username']!r}") from None
        _, plain = ApiToken.issue(user, name=options["name"], read_only=options["read_only"])
        self.stdout.write(plain)

from django.conf import settings
from django.contrib.auth import get_user_model

from eventplatform.cli import PlatformCommand


class Command(PlatformCommand):
    help = "Development only (DEBUG): create superuser admin/admin when there is no user yet."

    def handle(self, *args, **options):
        users = get_user_model().objects
        if not settings.DEBUG or users.exists():
            return
        users.create_superuser("admin", "admin@example.com", "admin")
        self.stdout.write("created development superuser admin / admin")

"""``python -m tests.django_legacy.migrate``: run the migrations, add the admin user."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_legacy.settings")
django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402

call_command("migrate", interactive=False, verbosity=0)
User.objects.create_superuser("admin", "admin@example.com", "bridge-pw")

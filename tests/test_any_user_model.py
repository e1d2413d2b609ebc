"""The security console works with any ``AUTH_USER_MODEL`` (issue 14, item 2).

Every admin that searches by user reads the user model's ``USERNAME_FIELD`` and ``EMAIL_FIELD`` when asked
(:func:`authguard.admin.user_search_fields`): a hard-coded ``user__username`` made every search a 500 with an
e-mail-login user model. ``AUTH_USER_MODEL`` cannot be swapped in this process, so the builder is tested
against stand-in user models (in an isolated app registry), the registered admins against this process's
``User``, and a whole portal with an e-mail-only user model in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path, lookup_spawns_duplicates
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models
from django.test import RequestFactory
from django.test.utils import isolate_apps
from django.urls import reverse

from authguard.console.mixins import UserSearchMixin, user_search_fields

from .console_data import staff_client, staff_user

REPO = Path(__file__).resolve().parents[1]


def authguard_admins() -> list[tuple[type[models.Model], admin.ModelAdmin]]:
    """The console's registered admins (django-otp's TOTP devices included: authguard replaces that one)."""
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if type(model_admin).__module__.startswith("authguard.")
    ]


def search_paths(model_admin: admin.ModelAdmin) -> list[str]:
    """The admin's search lookups as field paths (without Django's ``^``, ``=``, ``@`` prefixes)."""
    request = RequestFactory().get("/")
    # Staff who may view users: every lookup, the e-mail's too (the others get a subset of these).
    request.user = get_user_model()(is_active=True, is_superuser=True)
    return [field.lstrip("^=@") for field in model_admin.get_search_fields(request)]


def test_the_console_searches_by_user_everywhere_it_lists_users():
    searching = [type(model_admin).__name__ for _m, model_admin in authguard_admins()]
    assert len(searching) >= 15  # every console list, held actions and payees included
    for model, model_admin in authguard_admins():
        if model._meta.model_name == "campaignflag":
            assert not isinstance(model_admin, UserSearchMixin)  # flags belong to no customer
            continue
        assert isinstance(model_admin, UserSearchMixin), type(model_admin).__name__
        for relation in model_admin.user_search_through:
            # A typo in a relation, or a relation to another model, would be a 500 at the first search.
            assert model._meta.get_field(relation).related_model is get_user_model()


def test_every_search_lookup_of_the_console_resolves_on_this_user_model():
    for model, model_admin in authguard_admins():
        paths = search_paths(model_admin)
        assert not any(path.startswith("user__user__") for path in paths)
        for path in paths:
            get_fields_from_path(model, path)  # raises FieldDoesNotExist / NotRelationField
            # Forward relations only: a search never needs DISTINCT (nor returns a record twice).
            assert not lookup_spawns_duplicates(model._meta, path), (model, path)


def test_the_builder_reads_the_default_user_model():
    user = get_user_model()
    assert user_search_fields() == user_search_fields(user) == ("user__username", "user__email")
    assert user_search_fields(user, through=("customer", "approved_by")) == (
        "customer__username",
        "customer__email",
        "approved_by__username",
        "approved_by__email",
    )
    assert user_search_fields(user, through=()) == ()


@isolate_apps("authguard")
def test_an_email_login_user_model_is_searched_by_its_email_alone(monkeypatch):
    class EmailUser(AbstractBaseUser):
        email = models.EmailField(unique=True)
        USERNAME_FIELD = "email"
        EMAIL_FIELD = "email"

        class Meta:
            app_label = "authguard"
            managed = False

    class Record(models.Model):
        user = models.ForeignKey(EmailUser, on_delete=models.CASCADE, related_name="+")
        customer = models.ForeignKey(EmailUser, on_delete=models.CASCADE, related_name="+")
        summary = models.CharField(max_length=20)

        class Meta:
            app_label = "authguard"
            managed = False

        def __str__(self) -> str:
            return self.summary

    lookups = user_search_fields(EmailUser, through=("user", "customer"))
    assert lookups == ("user__email", "customer__email")  # no user__username: the model has none
    for lookup in lookups:
        assert get_fields_from_path(Record, lookup)[-1] is EmailUser._meta.get_field("email")

    class RecordAdmin(UserSearchMixin, admin.ModelAdmin):
        search_fields = ("summary",)
        user_search_through = ("user", "customer")

    record_admin = RecordAdmin(Record, admin.AdminSite())
    import authguard.console.mixins as console

    monkeypatch.setattr(console, "get_user_model", lambda: EmailUser)
    request = RequestFactory().get("/", {"q": "alice"})
    queryset, _duplicates = record_admin.get_search_results(request, Record.objects.all(), "alice")
    sql = str(queryset.query)  # the admin's own search query, compiled: a wrong lookup is a FieldError
    assert sql.count("LIKE") == 3 and "username" not in sql


@isolate_apps("authguard")
def test_a_user_model_without_email_and_a_custom_login_field():
    class MemberUser(AbstractBaseUser):
        member_no = models.CharField(max_length=12, unique=True)
        USERNAME_FIELD = "member_no"
        EMAIL_FIELD = "contact"  # names no field: nothing to search there

        class Meta:
            app_label = "authguard"
            managed = False

    class LoginUser(AbstractBaseUser):
        login = models.CharField(max_length=30, unique=True)
        mail = models.EmailField()
        USERNAME_FIELD = "login"
        EMAIL_FIELD = "mail"

        class Meta:
            app_label = "authguard"
            managed = False

    assert user_search_fields(MemberUser) == ("user__member_no",)
    assert user_search_fields(LoginUser) == ("user__login", "user__mail")


@isolate_apps("authguard")
def test_every_console_admin_follows_the_user_model(monkeypatch):
    class EmailUser(AbstractBaseUser):
        email = models.EmailField(unique=True)
        USERNAME_FIELD = "email"

        class Meta:
            app_label = "authguard"
            managed = False

    import authguard.console.mixins as console

    monkeypatch.setattr(console, "get_user_model", lambda: EmailUser)
    for _model, model_admin in authguard_admins():
        if not isinstance(model_admin, UserSearchMixin):
            continue
        paths = search_paths(model_admin)
        assert not [p for p in paths if p.endswith("__username")], type(model_admin).__name__
        expected = {f"{relation}__email" for relation in model_admin.user_search_through}
        assert expected and expected <= set(paths), type(model_admin).__name__


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_every_console_list_answers_a_search_by_user(user_factory):
    from authguard.models import AccountLock

    alice = user_factory("alice")
    AccountLock.objects.create(user=alice, failures=3)
    desk = staff_user("desk", superuser=True)
    client = staff_client(desk)  # signed in and passkey-verified, as the console requires
    for model, _model_admin in authguard_admins():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        answer = client.get(url, {"q": "alice"})
        assert answer.status_code == 200, url
    locks = client.get(reverse("admin:authguard_accountlock_changelist"), {"q": "alice@example.jp"})
    assert [lock.user for lock in locks.context["cl"].result_list] == [alice]
    passkeys = reverse("admin:authguard_passkeydevice_changelist")
    for q in ("desk", "desk@example.jp"):  # the staff member's own passkey, by login name and by e-mail
        assert [d.user for d in client.get(passkeys, {"q": q}).context["cl"].result_list] == [desk]


# -- a whole portal with an e-mail-only user model (subprocess) --------------------------------------------

EMAIL_USER_MODELS = '''
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models


class UserManager(BaseUserManager):
    def create_user(self, email, password=None, **extra):
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save()
        return user


class User(AbstractBaseUser, PermissionsMixin):
    """Login with the e-mail address, no username at all: how brokerages' portals are written."""

    email = models.EmailField(unique=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    objects = UserManager()
'''

PORTAL_SETTINGS = """
SECRET_KEY = "email-portal-" + "x" * 40
DEBUG = True
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "django_otp", "django_otp.plugins.otp_totp", "authguard", "emailusers",
]
AUTH_USER_MODEL = "emailusers.User"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
ROOT_URLCONF = "portal_urls"
USE_TZ = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
"""

PORTAL_URLS = """
from django.contrib import admin
from django.urls import include, path

urlpatterns = [path("admin/", admin.site.urls), path("authguard/", include("authguard.urls"))]
"""

# The console's passkey check is left out of MIDDLEWARE: this portal tests the search, not the sign-in.
PORTAL_SCRIPT = """
import json

import django

django.setup()
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.test.utils import setup_test_environment
from django.urls import reverse

from authguard.models import AccountLock

setup_test_environment()
call_command("migrate", run_syncdb=True, verbosity=0)
users = get_user_model().objects
alice = users.create_user("alice@example.jp", "correct horse battery")
AccountLock.objects.create(user=alice, failures=3)
desk = users.create_user("desk@example.jp", "desk-password-2026", is_staff=True, is_superuser=True)
client = Client()
client.force_login(desk)
answers = {}
for model, model_admin in admin.site._registry.items():
    if type(model_admin).__module__.startswith("authguard."):
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        answer = client.get(url, {"q": "alice"})
        found = answer.context["cl"].result_count if answer.status_code == 200 else None
        answers[url] = [answer.status_code, found]
print(json.dumps(answers))
"""


def test_a_portal_with_an_email_only_user_model_searches_every_console_list(tmp_path: Path):
    (tmp_path / "emailusers").mkdir()
    (tmp_path / "emailusers" / "__init__.py").write_text("")
    (tmp_path / "emailusers" / "models.py").write_text(EMAIL_USER_MODELS)
    (tmp_path / "portal_settings.py").write_text(PORTAL_SETTINGS)
    (tmp_path / "portal_urls.py").write_text(PORTAL_URLS)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
    }
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PORTAL_SCRIPT)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(answers) >= 15
    assert {url: status for url, (status, _found) in answers.items() if status != 200} == {}
    assert answers["/admin/authguard/accountlock/"] == [200, 1]  # found through user__email alone

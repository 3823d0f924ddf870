from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra) -> "User":
        if not email:
            raise ValueError("A user needs an email address")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> "User":
        extra.update(is_staff=True, is_superuser=True, role=User.Role.COORDINATOR)
        return self._create(email, password, **extra)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in. Email is the login; the role decides what they may do."""

    class Role(models.TextChoices):
        COORDINATOR = "coordinator", "Coordinator"
        COMMANDER = "commander", "Agency commander"
        OFFICIAL = "official", "Official (read-only)"

    email = models.EmailField("email address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=20, choices=Role, default=Role.OFFICIAL)
    agency = models.ForeignKey(
        "agencies.Agency",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="users",
        help_text="The agency a commander acts for.",
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May use the Django admin.")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
            models.CheckConstraint(
                condition=~Q(role="commander") | Q(agency__isnull=False),
                name="user_commander_has_agency",
                violation_error_message="A commander must be linked to an agency.",
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


class AuditEvent(models.Model):
    """One thing someone did: append-only. Written only through readiness.audit.record()."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        # PROTECT: people are deactivated, never deleted, and their trail stays attributable.
        "readiness.User",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # audit_actor_idx (actor, at) indexes it: one write less per event
    )
    # Kept as text too, so the record survives the user row and shows failed sign-ins.
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64, db_index=True)  # e.g. "agency.update"
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    # {"field": [before, after]} for changes; any other facts for other actions.
    changes = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            models.Index(fields=["actor", "at"], name="audit_actor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_email or 'system'} {self.action}"

    def change_lines(self) -> list[tuple[str, str]]:
        """(field, "before → after") for changes; (name, value) for other recorded facts."""

        def shown(value) -> str:
            if value in (None, ""):
                return "—"
            try:
                moment = parse_datetime(value) if isinstance(value, str) else None
            except ValueError:  # shaped like a time but not one (month 13): shown as it is
                moment = None
            if moment is not None and moment.tzinfo is not None:
                # Stored in UTC (ISO 8601); shown in local time like every other time.
                return date_format(timezone.localtime(moment), "Y-m-d H:i T")
            return str(value)

        return [
            (name, f"{shown(value[0])} → {shown(value[1])}")
            if isinstance(value, list) and len(value) == 2
            else (name, shown(value))
            for name, value in self.changes.items()
        ]


class ApiToken(models.Model):
    """A credential for an integration (an EOC display, a CAD system), issued by a coordinator.

    Each token acts as its own service account (`user`): a role, and an agency for a commander's
    token, checked by the same permissions as people. Only a hash of the key is kept; the key is
    shown once, when issued.
    """

    name = models.CharField(max_length=100, help_text="What uses it, e.g. Cook County EOC wall.")
    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="api_token")
    prefix = models.CharField(max_length=12, help_text="The key's first characters, to tell it.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def usable(self, now=None) -> bool:
        now = now or timezone.now()
        return (
            self.revoked_at is None
            and (self.expires_at is None or self.expires_at > now)
            and self.user.is_active
        )

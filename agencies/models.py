from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from .phones import MobileNumberField


class Region(models.Model):
    """A mutual-aid region (numbered regions, and Chicago as one of its own)."""

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="region_name_ci_unique")]

    def __str__(self) -> str:
        return self.name


# The largest US force (NYPD) has about 34,000 sworn officers: a figure beyond this is a typo.
MAX_SWORN_OFFICERS = 100_000


class Agency(models.Model):
    class Kind(models.TextChoices):
        MUNICIPAL = "municipal", "Municipal police"
        SHERIFF = "sheriff", "County sheriff"
        STATE = "state", "State police"
        UNIVERSITY = "university", "University police"
        OTHER = "other", "Other"

    code = models.SlugField(
        max_length=64,
        help_text="Stable identifier used by imports (an ORI, or a slug of the name). "
        "Never reused for another agency.",
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="agencies")
    county = models.CharField(max_length=100, blank=True)
    city = models.CharField(max_length=100, blank=True)
    address = models.CharField(max_length=300, blank=True)
    latitude = models.FloatField(validators=[MinValueValidator(-90), MaxValueValidator(90)])
    longitude = models.FloatField(validators=[MinValueValidator(-180), MaxValueValidator(180)])
    sworn_officers = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_SWORN_OFFICERS)],
        help_text="Sworn officers employed by the agency.",
    )
    min_home_staffing = models.PositiveIntegerField(
        "minimum home staffing",
        default=0,
        help_text="Officers the agency must keep at home whatever it sends.",
    )
    active = models.BooleanField(default=True)
    # Upkeep: the agency's commander (or a coordinator) confirms the record is current, and is
    # reminded when a confirmation is older than AGENCY_VERIFY_EVERY_DAYS.
    verified_at = models.DateTimeField("last verified on", null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    verify_reminded_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "agencies"
        constraints = [
            models.UniqueConstraint(fields=["code"], name="agency_code_unique"),
            # Keys are identifiers in which case does not matter (kept in lower case).
            models.UniqueConstraint(
                Lower("code"),
                name="agency_code_ci_unique",
                violation_error_message="An agency with this key already exists.",
            ),
            models.UniqueConstraint(Lower("name"), name="agency_name_ci_unique"),
            models.CheckConstraint(
                condition=Q(latitude__gte=-90, latitude__lte=90)
                & Q(longitude__gte=-180, longitude__lte=180),
                name="agency_coordinates_valid",
            ),
            models.CheckConstraint(
                condition=Q(sworn_officers__gte=0) & Q(min_home_staffing__gte=0),
                name="agency_counts_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(sworn_officers__lte=MAX_SWORN_OFFICERS),
                name="agency_sworn_officers_bounded",
                violation_error_message=f"At most {MAX_SWORN_OFFICERS:,} sworn officers.",
            ),
            models.CheckConstraint(
                condition=Q(min_home_staffing__lte=F("sworn_officers")),
                name="agency_home_staffing_within_sworn",
                violation_error_message="Minimum home staffing cannot exceed sworn officers.",
            ),
        ]
        indexes = [
            models.Index(fields=["region", "active"], name="agency_region_active_idx"),
            models.Index(fields=["kind", "active"], name="agency_kind_active_idx"),
            models.Index(fields=["active", "latitude", "longitude"], name="agency_location_idx"),
            # surveys.geo.locate() finds a member's typed starting place by city.
            models.Index(Lower("city"), name="agency_city_ci_idx"),
            # Lists by name (a poll dashboard's agencies not answered, the registry) walk it
            # and stop at a page instead of sorting every agency.
            models.Index(fields=["name"], name="agency_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.code = (self.code or "").lower()
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("agencies:agency-detail", args=[self.pk])

    def clean(self):
        self.code = (self.code or "").lower()

    @property
    def deployable_officers(self) -> int:
        """Sworn officers above the minimum the agency must keep at home."""
        return max(self.sworn_officers - self.min_home_staffing, 0)


class TeamType(models.Model):
    """A kind of special team, after FEMA NIMS resource typing. Seeded, editable in the admin."""

    code = models.SlugField(max_length=40, help_text="Short stable identifier, e.g. swat.")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["code"], name="teamtype_code_unique"),
            models.UniqueConstraint(Lower("name"), name="teamtype_name_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class TeamTypeLevel(models.Model):
    """A typed level of a team type (Type 1 is the most capable) and the personnel it implies."""

    team_type = models.ForeignKey(TeamType, on_delete=models.CASCADE, related_name="levels")
    level = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    min_personnel = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    description = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["team_type", "level"]
        constraints = [
            models.UniqueConstraint(fields=["team_type", "level"], name="teamtypelevel_unique"),
            models.CheckConstraint(
                condition=Q(level__gte=1) & Q(min_personnel__gte=1),
                name="teamtypelevel_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team_type} Type {self.level}"


class SpecialTeam(models.Model):
    """A special team of one agency, or a multi-agency team hosted by a lead agency.

    `members` is the whole team; member agencies' contributions are TeamMembership rows and the
    host supplies the rest.
    """

    MAX_MEMBERS = 2_000  # a state's combined mobile field force, many times over

    code = models.SlugField(max_length=64, help_text="Stable identifier used by imports.")
    name = models.CharField(max_length=200)
    agency = models.ForeignKey(
        Agency,
        on_delete=models.CASCADE,
        related_name="teams",
        help_text="The agency that owns the team, or hosts a multi-agency team.",
    )
    team_type = models.ForeignKey(TeamType, on_delete=models.PROTECT, related_name="teams")
    level = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(9)],
        help_text="NIMS type (1 is the most capable); blank if untyped.",
    )
    members = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_MEMBERS)],
        help_text="Officers on the team, all agencies together.",
    )
    commander_name = models.CharField(max_length=150, blank=True)
    commander_phone = models.CharField(max_length=40, blank=True)
    notes = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    member_agencies = models.ManyToManyField(
        Agency, through="TeamMembership", related_name="member_of_teams", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team_type__sort_order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["code"], name="specialteam_code_unique"),
            models.UniqueConstraint(
                Lower("code"),
                name="specialteam_code_ci_unique",
                violation_error_message="A team with this key already exists.",
            ),
            models.UniqueConstraint(
                "agency", Lower("name"), name="specialteam_agency_name_ci_unique"
            ),
            models.CheckConstraint(
                condition=Q(members__gte=1),
                name="specialteam_has_members",
                violation_error_message="A team has at least one member.",
            ),
            models.CheckConstraint(
                condition=Q(members__lte=2_000),
                name="specialteam_members_bounded",
                violation_error_message="At most 2,000 members.",
            ),
            models.CheckConstraint(
                condition=Q(level__isnull=True) | Q(level__gte=1), name="specialteam_level_positive"
            ),
        ]
        indexes = [
            models.Index(
                fields=["team_type", "level", "active"], name="team_type_level_active_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.code = (self.code or "").lower()
        super().save(*args, **kwargs)

    def clean(self):
        self.code = (self.code or "").lower()

    @property
    def level_label(self) -> str:
        return f"Type {self.level}" if self.level else "Untyped"


class TeamMembership(models.Model):
    """A member agency's contribution of officers to a multi-agency team."""

    team = models.ForeignKey(SpecialTeam, on_delete=models.CASCADE, related_name="memberships")
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="team_memberships")
    officers = models.PositiveIntegerField(validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["team", "agency__name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "agency"], name="teammembership_unique"),
            models.CheckConstraint(
                condition=Q(officers__gte=1), name="teammembership_officers_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agency} in {self.team} ({self.officers})"


class Contact(models.Model):
    """A person to ask at an agency. At most one primary contact per agency."""

    class Role(models.TextChoices):
        PRIMARY = "primary", "Primary"
        ALTERNATE = "alternate", "Alternate"

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=150)
    title = models.CharField("rank or title", max_length=100, blank=True)

    class Channels(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "Text message (SMS)"
        BOTH = "both", "Email and text message"

    email = models.EmailField()
    phone = models.CharField(max_length=40, blank=True, help_text="Desk or other phone.")
    mobile = MobileNumberField(help_text="For text messages; kept in E.164 (+13125550100).")
    channels = models.CharField(
        max_length=10,
        choices=Channels,
        default=Channels.EMAIL,
        help_text="How polls, reminders and escalations reach this person.",
    )
    # Quiet hours (local time; may wrap past midnight): a planning survey's texts wait until
    # they end; a request for assistance does not.
    quiet_start = models.TimeField("quiet hours from", null=True, blank=True)
    quiet_end = models.TimeField("quiet hours until", null=True, blank=True)
    sms_stopped_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Texted STOP: no texts until START."
    )
    role = models.CharField(max_length=20, choices=Role, default=Role.ALTERNATE)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="contacts",
        help_text="The login of this person, if they have one.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["agency", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["agency"],
                condition=Q(role="primary"),
                name="contact_one_primary_per_agency",
                violation_error_message="An agency has at most one primary contact.",
            ),
            models.UniqueConstraint("agency", Lower("email"), name="contact_agency_email_unique"),
            models.CheckConstraint(
                condition=Q(channels="email") | ~Q(mobile=""),
                name="contact_sms_needs_mobile",
                violation_error_message="Texts need a mobile number.",
            ),
            models.CheckConstraint(
                condition=Q(quiet_start__isnull=True, quiet_end__isnull=True)
                | Q(quiet_start__isnull=False, quiet_end__isnull=False),
                name="contact_quiet_hours_both_or_neither",
                violation_error_message="Give both ends of the quiet hours, or neither.",
            ),
        ]
        indexes = [models.Index(fields=["agency", "role", "active"], name="contact_lookup_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.agency})"

    @property
    def texts(self) -> bool:
        return (
            bool(self.mobile)
            and self.sms_stopped_at is None
            and self.channels in (self.Channels.SMS, self.Channels.BOTH)
        )

    @property
    def emails(self) -> bool:
        return self.channels in (self.Channels.EMAIL, self.Channels.BOTH)

    def quiet_at(self, moment) -> bool:
        """Whether `moment` falls in the contact's quiet hours (local time; may wrap midnight)."""
        if self.quiet_start is None or self.quiet_end is None:
            return False
        at = timezone.localtime(moment).time()
        start, end = self.quiet_start, self.quiet_end
        return start <= at < end if start <= end else (at >= start or at < end)

    def quiet_ends_after(self, moment):
        """The first moment at or after `moment` outside the quiet hours."""
        if not self.quiet_at(moment):
            return moment
        local = timezone.localtime(moment)
        end = local.replace(
            hour=self.quiet_end.hour, minute=self.quiet_end.minute, second=0, microsecond=0
        )
        return end if end > local else end + timezone.timedelta(days=1)


class Qualification(models.Model):
    """Something a team member holds, often with an expiry (a certification, a training, a typed
    position). Seeded; coordinators add more in the admin."""

    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["code"], name="qualification_code_unique")]

    def __str__(self) -> str:
        return self.name


class TeamMember(models.Model):
    """A person on a special team's roster: a person to ask, not a login. Their names and
    numbers are for their agency's commander (and coordinators where ROSTER_NAMES_TO_COORDINATORS
    allows); everyone else sees counts."""

    MAX_PER_TEAM = SpecialTeam.MAX_MEMBERS

    team = models.ForeignKey(SpecialTeam, on_delete=models.CASCADE, related_name="roster")
    agency = models.ForeignKey(
        Agency,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The member's own agency: the host, or a member agency of a multi-agency team.",
    )
    name = models.CharField(max_length=150)
    rank = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    mobile = MobileNumberField()
    home_base = models.CharField(
        "home base or station", max_length=200, blank=True,
        help_text="Where they would start from; blank: the agency's station.",
    )  # fmt: skip
    is_leader = models.BooleanField("team leader", default=False)
    active = models.BooleanField(default=True)
    # Set by the member from their personal link (leave, injury, training): not asked until then.
    away_until = models.DateField("unavailable until", null=True, blank=True)
    away_reason = models.CharField(max_length=100, blank=True)
    # The member texted STOP (carriers require it be honoured): no texts until they text START.
    sms_stopped_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team", "-is_leader", "name"]
        constraints = [
            models.UniqueConstraint(
                "team",
                Lower("name"),
                "agency",
                name="teammember_once_per_team",
                violation_error_message="This person is already on the team.",
            ),
        ]
        indexes = [models.Index(fields=["team", "active"], name="teammember_team_active_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.team})"


class MemberQualification(models.Model):
    member = models.ForeignKey(TeamMember, on_delete=models.CASCADE, related_name="qualifications")
    qualification = models.ForeignKey(Qualification, on_delete=models.PROTECT, related_name="+")
    expires_on = models.DateField(null=True, blank=True, help_text="Blank: does not expire.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["member", "qualification"], name="memberqualification_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.qualification} until {self.expires_on or 'no expiry'}"

from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from . import views

# The admin's own password form would skip two-factor and the sign-in rate limits: send admin
# sign-ins through allauth instead.
admin.site.login = secure_admin_login(admin.site.login)

handler400 = "readiness.views.bad_request"
handler404 = "readiness.views.not_found"
handler500 = "readiness.views.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # First: the answer links (surveys.urls starts with them), the most requested addresses in
    # a call-out; Django tries the patterns in order.
    path("", include("surveys.urls")),
    path("api/", include("readiness.api.urls")),
    path("", include("readiness.accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("audit/", views.audit_log, name="audit-log"),
    path("", include("readiness.dashboards.urls")),
    path("agencies/", include("agencies.urls")),
    path(settings.ADMIN_PATH, admin.site.urls),
]

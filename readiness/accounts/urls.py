"""People and API tokens' pages (included by the project's URLs, names unchanged)."""

from django.urls import path

from . import views

urlpatterns = [
    path(
        "accounts/invitation/<str:uidb64>/<str:token>/",
        views.invitation_accept,
        name="invitation-accept",
    ),
    path("people/", views.people, name="people"),
    path("people/invite/", views.person_invite, name="person-invite"),
    path("people/<int:user_id>/", views.person_edit, name="person-edit"),
    path("people/<int:user_id>/resend/", views.person_resend, name="person-resend"),
    path("api-tokens/", views.api_tokens, name="api-tokens"),
    path("api-tokens/<int:token_id>/revoke/", views.api_token_revoke, name="api-token-revoke"),
]

from django.urls import path

from . import roster_views, views

app_name = "agencies"

urlpatterns = [
    path("", views.agency_list, name="agency-list"),
    path("import/", views.registry_import, name="registry-import"),
    path("import/example.csv", views.import_example, name="import-example"),
    path("<int:agency_id>/", views.agency_detail, name="agency-detail"),
    path("<int:agency_id>/edit/", views.agency_edit, name="agency-edit"),
    path("<int:agency_id>/verify/", views.agency_verify, name="agency-verify"),
    path("<int:agency_id>/teams/new/", views.team_edit, name="team-create"),
    path("<int:agency_id>/teams/<int:team_id>/", views.team_edit, name="team-edit"),
    path("<int:agency_id>/teams/<int:team_id>/roster/", roster_views.roster, name="roster"),
    path(
        "<int:agency_id>/teams/<int:team_id>/roster/new/",
        roster_views.member_edit,
        name="member-create",
    ),
    path(
        "<int:agency_id>/teams/<int:team_id>/roster/<int:member_id>/",
        roster_views.member_edit,
        name="member-edit",
    ),
    path(
        "<int:agency_id>/teams/<int:team_id>/roster/import/",
        roster_views.roster_import,
        name="roster-import",
    ),
    path("<int:agency_id>/contacts/new/", views.contact_edit, name="contact-create"),
    path("<int:agency_id>/contacts/<int:contact_id>/", views.contact_edit, name="contact-edit"),
]

from django.urls import path

from . import views

app_name = "agencies"

urlpatterns = [
    path("", views.agency_list, name="agency-list"),
    path("import/", views.registry_import, name="registry-import"),
    path("import/example.csv", views.import_example, name="import-example"),
    path("<int:agency_id>/", views.agency_detail, name="agency-detail"),
]

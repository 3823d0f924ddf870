"""The dashboards' pages (included by the project's URLs, names unchanged)."""

from django.urls import path

from . import views

urlpatterns = [
    path("dashboard/", views.overview, name="dashboard"),
    path("polls/<int:poll_id>/dashboard/", views.poll_dashboard, name="poll-dashboard"),
    path(
        "polls/<int:poll_id>/dashboard/summary.json",
        views.poll_dashboard_summary,
        name="poll-dashboard-summary",
    ),
    path(
        "polls/<int:poll_id>/dashboard/map.json",
        views.poll_dashboard_map,
        name="poll-dashboard-map",
    ),
    path(
        "polls/<int:poll_id>/dashboard/replies.csv",
        views.poll_dashboard_csv,
        name="poll-dashboard-csv",
    ),
    path(
        "polls/<int:poll_id>/dashboard/history.csv",
        views.poll_dashboard_history_csv,
        name="poll-dashboard-history-csv",
    ),
]

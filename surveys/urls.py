from django.urls import path

from . import (
    inbound_views,
    inflight_views,
    member_views,
    reply_views,
    sms_views,
    views,
    wave_views,
)  # fmt: skip

app_name = "surveys"

urlpatterns = [
    # The addresses answers arrive at, first (readiness/urls.py puts this module first too).
    path("r/<str:token>/", reply_views.reply, name="reply"),
    path("r/<str:token>/done/", reply_views.reply_done, name="reply-done"),
    path("m/<str:token>/", member_views.member_answer, name="member-answer"),
    path("sms/inbound/", sms_views.sms_inbound, name="sms-inbound"),
    path("sms/status/", sms_views.sms_status, name="sms-status"),
    path("email/inbound/", inbound_views.email_inbound, name="email-inbound"),
    path("polls/", views.poll_list, name="poll-list"),
    path("polls/new/", views.poll_create, name="poll-create"),
    path("polls/preview/", views.poll_preview, name="poll-preview"),
    path("polls/<int:poll_id>/", views.poll_detail, name="poll-detail"),
    path("polls/<int:poll_id>/edit/", views.poll_edit, name="poll-edit"),
    path("polls/<int:poll_id>/send/", views.poll_send, name="poll-send"),
    path("polls/<int:poll_id>/close/", views.poll_close, name="poll-close"),
    path("polls/<int:poll_id>/cancel/", views.poll_cancel, name="poll-cancel"),
    path("polls/<int:poll_id>/extend/", views.poll_extend, name="poll-extend"),
    path("polls/<int:poll_id>/remind/", views.poll_remind, name="poll-remind"),
    path("polls/<int:poll_id>/duplicate/", views.poll_duplicate, name="poll-duplicate"),
    path("polls/<int:poll_id>/add-agencies/", inflight_views.poll_add_agencies, name="poll-add"),
    path("polls/<int:poll_id>/reopen/", inflight_views.poll_reopen, name="poll-reopen"),
    path("polls/<int:poll_id>/waves/<str:action>/", wave_views.poll_waves, name="poll-waves"),
    path("polls/<int:poll_id>/test-email/", inflight_views.poll_test_email, name="poll-test-email"),
    path(
        "polls/<int:poll_id>/invitations/<int:invitation_id>/reissue/",
        inflight_views.invitation_reissue,
        name="invitation-reissue",
    ),
    path(
        "polls/<int:poll_id>/invitations/<int:invitation_id>/send-to/",
        inflight_views.invitation_send_to,
        name="invitation-send-to",
    ),
    path(
        "polls/<int:poll_id>/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation-revoke",
    ),
    path(
        "polls/<int:poll_id>/replies/<int:agency_id>/",
        views.reply_history,
        name="reply-history",
    ),
    path("polls/<int:poll_id>/feed/", views.reply_feed, name="reply-feed"),
    path("my-agency/", reply_views.my_agency, name="my-agency"),
    path(
        "my-agency/polls/<int:poll_id>/members/",
        member_views.my_agency_members,
        name="my-agency-members",
    ),
    path(
        "my-agency/polls/<int:poll_id>/members/tally/",
        member_views.my_agency_tally,
        name="my-agency-tally",
    ),
    path("messages/", inbound_views.inbound_list, name="inbound"),
    path(
        "messages/<int:message_id>/form/",
        inbound_views.inbound_open_form,
        name="inbound-open-form",
    ),
    path(
        "messages/<int:message_id>/handled/", inbound_views.inbound_handled, name="inbound-handled"
    ),
    path("my-agency/polls/<int:poll_id>/", reply_views.my_agency_reply, name="my-agency-reply"),
    path(
        "my-agency/polls/<int:poll_id>/done/",
        reply_views.my_agency_reply_done,
        name="my-agency-reply-done",
    ),
]

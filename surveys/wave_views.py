"""The coordinator's controls over a poll's waves (issue 20): pause, resume, the next ring now,
skip the next ring, stop. Each is a POST, confirmed on the page, audited by surveys.waves."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from readiness import permissions

from . import waves
from .models import Poll

ACTIONS = ("pause", "resume", "next", "skip", "stop")


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_waves(request, poll_id: int, action: str):
    poll = get_object_or_404(Poll, pk=poll_id)
    if action not in ACTIONS:
        messages.error(request, "Unknown action.")
    else:
        try:
            messages.success(request, waves.waves_control(poll=poll, action=action,
                                                          request=request))  # fmt: skip
        except waves.NotPossible as exc:
            messages.error(request, str(exc))
    return redirect("surveys:poll-detail", poll.pk)

"""Sign-ins, failed sign-ins and sign-outs go to the audit trail."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from . import audit


@receiver(user_logged_in)
def audit_sign_in(sender, request, user, **kwargs):
    audit.record("auth.sign_in", actor=user, request=request, obj=user)


@receiver(user_logged_out)
def audit_sign_out(sender, request, user, **kwargs):
    if user is not None:
        audit.record("auth.sign_out", actor=user, request=request, obj=user)


@receiver(user_login_failed)
def audit_failed_sign_in(sender, credentials, request=None, **kwargs):
    # Django masks the password in `credentials`; only the address tried is kept.
    tried = str(credentials.get("email") or credentials.get("username") or "")[:254]
    audit.record("auth.sign_in_failed", request=request, actor_email=tried)

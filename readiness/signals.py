"""Sign-ins, failed sign-ins and sign-outs go to the audit trail."""

from allauth.account import signals as account_signals
from allauth.mfa import signals as mfa_signals
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


# Account changes made through allauth's pages.


def _kind(kwargs) -> dict:
    # allauth passes the Authenticator, or for TOTP its wrapper holding it as .instance.
    authenticator = kwargs.get("authenticator")
    return {"type": getattr(getattr(authenticator, "instance", authenticator), "type", "")}


def _on(signal, action: str, details=lambda kwargs: {}):
    def receiver_(sender, request=None, user=None, **kwargs):
        user = user or getattr(kwargs.get("email_address"), "user", None)
        audit.record(action, actor=user, request=request, obj=user, changes=details(kwargs))

    signal.connect(receiver_, weak=False, dispatch_uid=f"audit-{action}")


_on(account_signals.password_changed, "auth.password_changed")
_on(account_signals.password_reset, "auth.password_reset")
_on(account_signals.password_set, "auth.password_set")
_on(account_signals.email_confirmed, "auth.email_verified",
    lambda k: {"email": k["email_address"].email})  # fmt: skip
_on(account_signals.email_added, "auth.email_added",
    lambda k: {"email": k["email_address"].email})  # fmt: skip
_on(account_signals.email_removed, "auth.email_removed",
    lambda k: {"email": k["email_address"].email})  # fmt: skip
_on(account_signals.email_changed, "auth.email_changed",
    lambda k: {"email": [getattr(k["from_email_address"], "email", None),
                         k["to_email_address"].email]})  # fmt: skip
_on(mfa_signals.authenticator_added, "auth.mfa_added",
    _kind)  # fmt: skip
_on(mfa_signals.authenticator_removed, "auth.mfa_removed",
    _kind)  # fmt: skip
_on(mfa_signals.authenticator_reset, "auth.mfa_reset",
    _kind)  # fmt: skip
_on(mfa_signals.authentication_failed, "auth.mfa_failed")

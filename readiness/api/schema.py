"""The OpenAPI schema's additions: the error responses every operation can give."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

from .errors import ErrorSerializer

ERROR_DESCRIPTIONS = {
    "400": "Invalid input or query parameters; `errors` says what, per field.",
    "401": "No credentials, or a token that is unknown, expired or revoked.",
    "403": "Signed in, but the role may not do this (or a session request without CSRF token).",
    "404": "No such object, or not one the caller may see.",
    "405": "This method is not allowed here.",
    "406": "The Accept header asks for a format the API does not offer.",
    "409": "The object's state refuses the request (see `code`).",
    "415": "The request body's media type is not supported.",
    "429": "Too many requests; retry after the Retry-After header's seconds.",
}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema, with the error responses every operation can give."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = ["400", "401", "403", "404", "405", "406", "429"]
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["409", "415"]
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code)
                responses[code]["description"] = ERROR_DESCRIPTIONS[code]
        # Answered by gunicorn before the app sees the request, so with its body, not JSON.
        responses.setdefault(
            "414", {"description": "The URL is too long (over 4094 bytes in the request line)."}
        )
        return responses


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """Tokens as the schema's bearerAuth: `Authorization: Bearer <key>`."""

    target_class = "readiness.api.auth.TokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A key from the API tokens page (coordinators issue and revoke them).",
        }

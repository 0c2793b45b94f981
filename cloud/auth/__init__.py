"""Identity and authorisation: users and roles, passwords (argon2), access tokens (JWT) and refresh tokens,
login throttling, and the policy every API route goes through (:mod:`cloud.auth.policy`)."""

from cloud.auth._errors import ERROR_RESPONSES, ApiError, ErrorBody, ErrorDetail, install_error_handlers
from cloud.auth._identity import AuthError, Identity, LoginFailed, Role, Throttled, ThrottlePolicy, User
from cloud.auth._tokens import ALGORITHM, AccessClaims, TokenError, TokenSigner

__all__ = [
    "ALGORITHM",
    "ERROR_RESPONSES",
    "AccessClaims",
    "ApiError",
    "AuthError",
    "ErrorBody",
    "ErrorDetail",
    "Identity",
    "LoginFailed",
    "Role",
    "ThrottlePolicy",
    "Throttled",
    "TokenError",
    "TokenSigner",
    "User",
    "install_error_handlers",
]

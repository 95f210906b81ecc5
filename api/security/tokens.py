"""Access tokens (JWT, HS256) for logged-in users and opaque API tokens for integrations.

Access token: a JWT signed with ``SMARTOFFICE_JWT_SECRET`` that names the user and expires
after ``access_token_ttl_s``. The API looks the user up on every request, so disabling a user
or changing their role takes effect at once, and the token only proves who logged in.

API token: ``soi_`` followed by 43 characters of ``secrets.token_urlsafe(32)`` (256 bits). The
registry keeps only its SHA-256. A slow hash is not needed, because a random 256-bit value
cannot be guessed from its hash the way a password can. The prefix distinguishes an API token
from a JWT without parsing and lets secret scanners find leaked tokens.
"""

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from pydantic import SecretStr

logger = logging.getLogger(__name__)

ISSUER = "smartoffice-api"
ALGORITHM = "HS256"
MIN_SECRET_LENGTH = 32
"""Minimum length of the JWT secret, characters (HS256 needs a key of at least 256 bits)."""

API_TOKEN_PREFIX = "soi_"
_PLACEHOLDER_SECRETS = frozenset({"change-me", "changeme", "secret", "password", "test", "example"})


class TokenSecretError(ValueError):
    """Raised when the JWT secret is set but unusable."""


class TokenInvalid(Exception):
    """Raised when an access token is malformed, forged or for another issuer.

    ``reason`` is a key of ``api.messages.TOKEN_PROBLEMS``: malformed, signature, algorithm,
    issuer, claims or future.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenExpired(Exception):
    """Raised when an access token's ``exp`` has passed; ``expired_at_s`` is that time, epoch s."""

    def __init__(self, expired_at_s: int) -> None:
        super().__init__(f"expired at {expired_at_s}")
        self.expired_at_s = expired_at_s


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An issued access token and its expiry, epoch s."""

    token: str
    expires_at_s: int


def load_jwt_secret(secret: SecretStr | None, secret_file: Path | None) -> bytes | None:
    """Return the JWT key from the setting or the first line of ``secret_file``; None when neither is set.

    Raises:
        TokenSecretError: both are set, the file cannot be read, or the key is a placeholder
            or shorter than ``MIN_SECRET_LENGTH`` characters.
    """
    if secret is not None and secret_file is not None:
        raise TokenSecretError("set SMARTOFFICE_JWT_SECRET or SMARTOFFICE_JWT_SECRET_FILE, not both")
    if secret is not None:
        text, source = secret.get_secret_value().strip(), "SMARTOFFICE_JWT_SECRET"
    elif secret_file is not None:
        try:
            text = secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise TokenSecretError(f"SMARTOFFICE_JWT_SECRET_FILE={str(secret_file)!r} cannot be read: {exc.strerror}") from None
        source = f"SMARTOFFICE_JWT_SECRET_FILE={str(secret_file)!r}"
    else:
        return None

    if text.lower() in _PLACEHOLDER_SECRETS or len(text) < MIN_SECRET_LENGTH:
        raise TokenSecretError(
            f"{source}: the secret must have at least {MIN_SECRET_LENGTH} characters and not be a placeholder; "
            "generate one with: openssl rand -hex 32"
        )
    return text.encode("utf-8")


class JwtCodec:
    """Issue and check the access tokens of one API deployment."""

    def __init__(self, secret: bytes, ttl_s: int) -> None:
        self._secret = secret
        self.ttl_s = ttl_s

    def __repr__(self) -> str:
        return f"JwtCodec(ttl_s={self.ttl_s})"

    def issue(self, username: str, role: str, now_s: float | None = None) -> AccessToken:
        """Return a signed token for ``username`` that expires ``ttl_s`` from now."""
        issued_at = int(now_s if now_s is not None else time.time())
        expires_at = issued_at + self.ttl_s
        claims = {
            "iss": ISSUER,
            "sub": username,
            "role": role,
            "iat": issued_at,
            "exp": expires_at,
            "jti": secrets.token_hex(8),
        }
        return AccessToken(jwt.encode(claims, self._secret, algorithm=ALGORITHM), expires_at)

    def subject(self, token: str) -> str:
        """Return the user name a valid token was issued to.

        Raises:
            TokenExpired: the signature is valid and ``exp`` has passed.
            TokenInvalid: anything else is wrong: format, signature, algorithm, issuer, claims.
        """
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            expired_at = jwt.decode(token, self._secret, algorithms=[ALGORITHM], options={"verify_exp": False})["exp"]
            raise TokenExpired(int(expired_at)) from None
        except jwt.InvalidSignatureError:
            raise TokenInvalid("signature") from None
        except jwt.DecodeError:
            raise TokenInvalid("malformed") from None
        except jwt.InvalidTokenError as exc:
            raise TokenInvalid(_claim_problem(exc)) from None

        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise TokenInvalid("claims")
        return subject


def _claim_problem(exc: jwt.InvalidTokenError) -> str:
    if isinstance(exc, jwt.InvalidIssuerError):
        return "issuer"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "future"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "algorithm"
    return "claims"


def new_api_token() -> str:
    """Return a new random API token; show it once and store only ``hash_api_token`` of it."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_api_token(token: str) -> str:
    """Return the hex SHA-256 of ``token``, the form in which the registry stores it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def is_api_token(token: str) -> bool:
    """Return True when ``token`` has the API token form rather than a JWT's."""
    return token.startswith(API_TOKEN_PREFIX)

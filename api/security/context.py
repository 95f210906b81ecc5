"""Security state of one API process: the token key, login counters, the pseudonym key and the registry.

``load_security(settings)`` reads and checks the secrets when the application is built, so a
bad secret fails at start-up. The application's lifespan sets ``sessions`` once it has
migrated and opened the registry.
"""

import logging
import secrets
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from ingest.pseudonyms import Pseudonymizer, PseudonymKeyError, load_key

from ..config import ApiSettings
from .lockout import LockoutPolicy, LoginGuard
from .tokens import JwtCodec, TokenSecretError, load_jwt_secret

logger = logging.getLogger(__name__)


class SecurityConfigError(ValueError):
    """Raised at start-up when a secret or security setting is unusable; the message names the variable."""


@dataclass(eq=False)
class SecurityContext:
    """Shared state of the security dependencies and routes; the application's lifespan sets ``sessions``."""

    settings: ApiSettings
    codec: JwtCodec
    guard: LoginGuard
    pseudonymizer: Pseudonymizer | None
    sessions: sessionmaker[Session] | None = field(default=None, repr=False)

    @property
    def auth_enabled(self) -> bool:
        """True unless ``SMARTOFFICE_AUTH_ENABLED=false``."""
        return self.settings.auth_enabled


def load_security(settings: ApiSettings) -> SecurityContext:
    """Check the security settings and load the secrets; log what a development set-up turned off.

    Raises:
        SecurityConfigError: a secret is set but unusable.
    """
    try:
        jwt_secret = load_jwt_secret(settings.jwt_secret, settings.jwt_secret_file)
        pseudonym_key = load_key(settings.pseudonym_key, settings.pseudonym_key_file)
    except (TokenSecretError, PseudonymKeyError) as exc:
        raise SecurityConfigError(str(exc)) from None

    if not settings.auth_enabled:
        logger.warning(
            "SMARTOFFICE_AUTH_ENABLED=false: every request acts as admin without a login. "
            "Use this only for development, on a loopback address"
        )
    if jwt_secret is None:
        jwt_secret = secrets.token_bytes(32)
        if settings.auth_enabled:
            logger.warning(
                "no SMARTOFFICE_JWT_SECRET or SMARTOFFICE_JWT_SECRET_FILE: access tokens are signed with a random key "
                "of this process, so they end when it restarts and other API processes reject them"
            )

    pseudonymizer = None
    if not settings.pseudonymize:
        logger.warning("SMARTOFFICE_PSEUDONYMIZE=false: employee ids are shown as the ingest service stored them")
    elif pseudonym_key is None:
        logger.warning(
            "no SMARTOFFICE_PSEUDONYM_KEY or SMARTOFFICE_PSEUDONYM_KEY_FILE: the live view leaves out employee ids "
            "and employee lists cannot be imported; set the ingest service's key"
        )
    else:
        pseudonymizer = Pseudonymizer(pseudonym_key)

    policy = LockoutPolicy(
        max_failures=settings.login_max_failures,
        lockout_s=settings.login_lockout_s,
        address_max_failures=settings.login_address_max_failures,
        address_window_s=settings.login_address_window_s,
    )
    return SecurityContext(
        settings=settings,
        codec=JwtCodec(jwt_secret, settings.access_token_ttl_s),
        guard=LoginGuard(policy),
        pseudonymizer=pseudonymizer,
    )

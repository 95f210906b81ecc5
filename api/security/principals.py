"""Caller of a request: a logged-in user or an integration token, with its role and OPD scope.

Roles:

- ``admin``: everything, including tokens, the audit log, employees, dead letters and the
  configuration and provisioning of nodes.
- ``facility_manager``: the data and node status of the OPDs assigned to the user, with the
  NIP and name of their employees. The user may acknowledge the alerts of those OPDs.
- ``leadership``: read-only, every OPD, attendance as counts only.
- ``integration``: read-only API token scoped to listed OPDs, attendance as counts only.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ..errors import ApiError


class Role(StrEnum):
    """Role of a user or token."""

    ADMIN = "admin"
    FACILITY_MANAGER = "facility_manager"
    LEADERSHIP = "leadership"
    INTEGRATION = "integration"


ALL_ROLES = tuple(Role)
"""Every role: routes that only read data the caller's OPD scope allows."""

PERSONAL_DATA_ROLES = (Role.ADMIN, Role.FACILITY_MANAGER)
"""Roles that see per-employee attendance rows, with NIP and name, of the OPDs in their scope."""

OPERATOR_ROLES = (Role.ADMIN, Role.FACILITY_MANAGER)
"""Roles that may act on the OPDs in their scope without changing configuration, e.g. acknowledge an alert."""

SCOPED_ROLES = (Role.FACILITY_MANAGER, Role.INTEGRATION)
"""Roles that need a list of OPDs; the others see every OPD."""

USER_ROLES = (Role.ADMIN, Role.FACILITY_MANAGER, Role.LEADERSHIP)
"""Roles a person can log in with; ``integration`` belongs to API tokens only."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request.

    ``opds`` is None for a role with every OPD in scope, else the OPD ids in scope.
    ``kind`` is ``user``, ``token`` or ``anonymous`` (authentication turned off).
    """

    kind: str
    name: str
    role: Role
    opds: frozenset[str] | None
    subject_id: int | None = None

    @property
    def actor(self) -> str:
        """Name of the caller in the audit log and in logs, e.g. ``user:siti`` or ``token:erp#4``."""
        if self.kind == "token":
            return f"token:{self.name}#{self.subject_id}"
        return f"{self.kind}:{self.name}"

    def may_see_opd(self, opd: str) -> bool:
        """Return True when ``opd`` is in the caller's scope."""
        return self.opds is None or opd in self.opds

    def visible(self, opds: Iterable[str]) -> list[str]:
        """Return the ids of ``opds`` in the caller's scope, in their order."""
        return [opd for opd in opds if self.may_see_opd(opd)]

    def scope(self, requested: list[str] | None) -> list[str] | None:
        """Return the OPDs a listing covers: the requested ones in scope, else every OPD in scope.

        None means every OPD. A listing whose ``opd`` filter names an OPD outside the scope is
        rejected with 403 before the route runs, so ``requested`` is normally in scope.
        """
        if requested:
            return self.visible(requested)
        if self.opds is None:
            return None
        return sorted(self.opds)

    def may_see_personal_data(self, opd: str) -> bool:
        """Return True when the caller may see per-employee attendance, NIP and name of ``opd``."""
        return self.role in PERSONAL_DATA_ROLES and self.may_see_opd(opd)

    def require_opd(self, opd: str) -> None:
        """Raise 403 ``opd_forbidden`` unless ``opd`` is in the caller's scope.

        Routes whose OPD is not a path parameter (e.g. an alert looked up by id) call this
        once they know the OPD.
        """
        if not self.may_see_opd(opd):
            allowed = ", ".join(sorted(self.opds or ())) or "-"
            raise ApiError(403, "opd_forbidden", opd=opd, allowed=allowed)

    def require_personal_data(self, opd: str) -> None:
        """Raise 403 ``personal_data_forbidden`` unless the caller may see per-employee rows of ``opd``."""
        self.require_opd(opd)
        if self.role not in PERSONAL_DATA_ROLES:
            raise ApiError(403, "personal_data_forbidden", role=self.role.value)


ANONYMOUS_ADMIN = Principal(kind="anonymous", name="auth-disabled", role=Role.ADMIN, opds=None)
"""The caller of every request when ``SMARTOFFICE_AUTH_ENABLED=false``."""

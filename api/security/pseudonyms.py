"""The API's side of the employee pseudonyms; the HMAC itself is in ``ingest.pseudonyms``.

The ingest service writes each attendance ``employee_id`` to InfluxDB as
``HMAC-SHA256(key, opd + ":" + employee_id)`` truncated to 16 hex characters, so every
attendance route reads pseudonyms. The API needs the same key for two things only: importing
an OPD's employee list by NIP (``PUT /api/v1/opds/{opd}/employees``) and masking the ids of
the live view, which it receives from the broker as the terminals sent them.
"""

from ingest.pseudonyms import PSEUDONYM_LENGTH, Pseudonymizer, pseudonym

from ..live import EmployeeIdMask
from .context import SecurityContext

__all__ = ["PSEUDONYM_LENGTH", "Pseudonymizer", "live_employee_id_mask", "pseudonym"]


def live_employee_id_mask(security: SecurityContext) -> EmployeeIdMask | None:
    """Return how the live view shows employee ids: the pseudonym, left out without a key, or as sent.

    None (ids as sent) only when ``SMARTOFFICE_PSEUDONYMIZE=false``, in a development set-up
    whose ingest service stores the ids as sent too.
    """
    if not security.settings.pseudonymize:
        return None
    if security.pseudonymizer is None:
        return _leave_out
    return security.pseudonymizer.pseudonym


def _leave_out(opd: str, employee_id: str) -> None:
    return None

"""The link between attendance pseudonyms and employees (NIP and name), per OPD, in the registry.

An administrator imports the list of an OPD by NIP; the API computes each pseudonym with the
ingest service's key, so the registry never needs the key and InfluxDB never receives a NIP.
"""

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from ingest.pseudonyms import Pseudonymizer
from registry.db import transaction
from registry.models import Employee, Opd


@dataclass(frozen=True, slots=True)
class Identity:
    """Registry entry of one pseudonym; NIP and name are None when the list does not give them."""

    pseudonym: str
    nip: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class EmployeeEntry:
    """One employee to import: the id the terminal sends (the NIP unless it uses enrolment numbers)."""

    employee_id: str
    nip: str
    name: str


class PseudonymCollision(ValueError):
    """Raised when two employee ids of one import get the same pseudonym."""

    def __init__(self, first: str, second: str, pseudonym: str) -> None:
        super().__init__(f"employee ids {first!r} and {second!r} both have pseudonym {pseudonym}")
        self.first = first
        self.second = second


def replace_employees(
    sessions: sessionmaker[Session], pseudonymizer: Pseudonymizer, opd: str, opd_name: str, entries: list[EmployeeEntry]
) -> list[Identity]:
    """Replace the employee list of ``opd`` with ``entries``; return the stored identities.

    The OPD row is created when the registry has none yet.

    Raises:
        PseudonymCollision: two entries have the same pseudonym.
    """
    identities: dict[str, Identity] = {}
    owners: dict[str, str] = {}
    for entry in entries:
        value = pseudonymizer.pseudonym(opd, entry.employee_id)
        if value in owners and owners[value] != entry.employee_id:
            raise PseudonymCollision(owners[value], entry.employee_id, value)
        owners[value] = entry.employee_id
        identities[value] = Identity(pseudonym=value, nip=entry.nip, name=entry.name)

    with transaction(sessions) as session:
        opd_row = session.scalar(select(Opd).where(Opd.key == opd))
        if opd_row is None:
            opd_row = Opd(key=opd, name=opd_name)
            session.add(opd_row)
            session.flush()
        session.execute(delete(Employee).where(Employee.opd_id == opd_row.id))
        session.add_all(
            Employee(opd_id=opd_row.id, pseudonym=item.pseudonym, nip=item.nip, name=item.name)
            for item in identities.values()
        )
    return sorted(identities.values(), key=lambda item: (item.name or "", item.pseudonym))


def read_identities(sessions: sessionmaker[Session], opd: str) -> dict[str, Identity]:
    """Return the known identities of ``opd`` by pseudonym; empty when none were imported."""
    statement = select(Employee).join(Opd, Employee.opd_id == Opd.id).where(Opd.key == opd)
    with sessions() as session:
        return {
            row.pseudonym: Identity(pseudonym=row.pseudonym, nip=row.nip, name=row.name)
            for row in session.scalars(statement)
        }

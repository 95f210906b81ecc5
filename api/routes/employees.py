"""The employees of an OPD: the link between attendance pseudonyms and NIP and name, for admins."""

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from contract.payloads import EmployeeId

from ..deps import AppContext, OpdPath, ensure_known_opd, get_context
from ..errors import ApiError
from ..security.audit import record
from ..security.context import SecurityContext
from ..security.deps import current_principal, get_security, in_registry
from ..security.employees import EmployeeEntry, Identity, PseudonymCollision, read_identities, replace_employees
from ..security.principals import Principal

router = APIRouter(prefix="/api/v1/opds/{opd}", tags=["employees"])

MAX_EMPLOYEES = 20_000
"""Most employees one OPD list may have."""


class EmployeeIn(BaseModel):
    """One employee of the list to import."""

    nip: EmployeeId = Field(description="NIP (18 digits), or another staff number")
    name: str = Field(min_length=1, max_length=200)
    employee_id: EmployeeId | None = Field(
        None, description="The id the attendance terminal sends, when it is not the NIP (an enrolment number)"
    )


class EmployeeList(BaseModel):
    """The whole employee list of an OPD; it replaces the stored one."""

    employees: list[EmployeeIn] = Field(max_length=MAX_EMPLOYEES)


class EmployeeOut(BaseModel):
    """One employee and the pseudonym under which their punches are stored."""

    pseudonym: str
    nip: str | None
    name: str | None


class EmployeesResponse(BaseModel):
    """The employee list of an OPD."""

    opd: str
    count: int
    employees: list[EmployeeOut]


@router.get("/employees", response_model=EmployeesResponse)
async def read_employees(
    context: Annotated[AppContext, Depends(get_context)],
    security: Annotated[SecurityContext, Depends(get_security)],
    principal: Annotated[Principal, Depends(current_principal)],
    opd: Annotated[str, OpdPath],
) -> EmployeesResponse:
    """Return the OPD's employees with their pseudonyms; the view is written to the audit log."""
    await ensure_known_opd(context, opd)
    identities = sorted((await in_registry(read_identities, security.sessions, opd)).values(), key=_order)
    await record(security.sessions, principal.actor, "employees.view", f"opd:{opd}/employees", count=len(identities))
    return _response(opd, identities)


@router.put("/employees", response_model=EmployeesResponse)
async def replace_employee_list(
    context: Annotated[AppContext, Depends(get_context)],
    security: Annotated[SecurityContext, Depends(get_security)],
    principal: Annotated[Principal, Depends(current_principal)],
    opd: Annotated[str, OpdPath],
    body: EmployeeList,
) -> EmployeesResponse:
    """Replace the OPD's employee list; the API computes each pseudonym from the terminal's id (default the NIP).

    The pseudonym is the one the ingest service stores, because both use the same key, so
    attendance routes can show NIP and name to the roles allowed to see them.
    """
    await ensure_known_opd(context, opd)
    if security.pseudonymizer is None:
        raise ApiError(503, "pseudonym_key_missing")

    entries = []
    seen: set[str] = set()
    for item in body.employees:
        employee_id = item.employee_id or item.nip
        if employee_id in seen:
            raise ApiError(422, "duplicate_employee", parameter="employees", employee_id=employee_id)
        seen.add(employee_id)
        entries.append(EmployeeEntry(employee_id=employee_id, nip=item.nip, name=item.name))

    entry = context.catalogue.opd(opd)
    opd_name = entry.name if entry is not None else opd
    try:
        identities = await in_registry(replace_employees, security.sessions, security.pseudonymizer, opd, opd_name, entries)
    except PseudonymCollision as exc:
        raise ApiError(422, "pseudonym_collision", parameter="employees", first=exc.first, second=exc.second) from None
    await record(security.sessions, principal.actor, "employees.replace", f"opd:{opd}/employees", count=len(identities))
    return _response(opd, identities)


def _order(identity: Identity) -> tuple[str, str]:
    return identity.name or "", identity.pseudonym


def _response(opd: str, identities: list[Identity]) -> EmployeesResponse:
    return EmployeesResponse(
        opd=opd,
        count=len(identities),
        employees=[EmployeeOut(pseudonym=item.pseudonym, nip=item.nip, name=item.name) for item in identities],
    )

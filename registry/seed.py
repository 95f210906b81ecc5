"""Load the YAML catalogue (OPDs, rooms, nodes, devices) into the registry.

The catalogue file stays the place where a regency describes its offices; seeding makes the
registry match it. Rows are added or updated by their wire ids, and nothing is deleted, so
credentials of provisioned nodes survive a reseed.
"""

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from contract.catalogue import Catalogue

from .models import Device, Node, Opd, Room

log = logging.getLogger(__name__)


def seed_catalogue(session: Session, catalogue: Catalogue) -> dict[str, int]:
    """Add or update every OPD, room, node and device of ``catalogue``; return counts by table."""
    counts = {"opds": 0, "rooms": 0, "nodes": 0, "devices": 0}
    for opd_entry in catalogue.opds:
        opd = session.scalar(select(Opd).where(Opd.key == opd_entry.id))
        if opd is None:
            opd = Opd(key=opd_entry.id)
            session.add(opd)
        opd.name = opd_entry.name
        opd.island = opd_entry.island or None
        opd.town = opd_entry.town or None
        opd.employees = opd_entry.employees
        session.flush()
        counts["opds"] += 1

        for room_entry in opd_entry.rooms:
            room = session.scalar(select(Room).where(Room.opd_id == opd.id, Room.key == room_entry.id))
            if room is None:
                room = Room(opd_id=opd.id, key=room_entry.id)
                session.add(room)
            room.name = room_entry.name
            counts["rooms"] += 1

        for node_entry in opd_entry.nodes:
            node = session.scalar(select(Node).where(Node.opd_id == opd.id, Node.key == node_entry.id))
            if node is None:
                node = Node(opd_id=opd.id, key=node_entry.id)
                session.add(node)
            node.name = node_entry.name
            session.flush()
            counts["nodes"] += 1

            for device_entry in node_entry.devices:
                device = session.scalar(select(Device).where(Device.opd_id == opd.id, Device.key == device_entry.id))
                if device is None:
                    device = Device(opd_id=opd.id, key=device_entry.id, node_id=node.id)
                    session.add(device)
                device.node_id = node.id
                device.kind = device_entry.kind.value
                device.room_key = device_entry.room
                device.circuit = device_entry.circuit
                counts["devices"] += 1

    session.flush()
    log.info("registry seeded from catalogue: %s", counts)
    return counts

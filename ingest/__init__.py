"""Ingest service: MQTT (wire contract v1) to InfluxDB through its v1 ``/write`` API."""

from .config import IngestSettings
from .service import IngestService

__all__ = ["IngestService", "IngestSettings"]

"""Command-server API (FastAPI): OPDs, latest readings, time series and attendance."""

from .app import create_app
from .config import ApiSettings

__all__ = ["ApiSettings", "create_app"]

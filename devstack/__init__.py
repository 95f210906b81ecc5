"""Run Mosquitto, InfluxDB and the platform's services as child processes on loopback.

Used by the local platform command (``python -m devstack``) and by the test fixtures, so that
both start the real servers the same way: configuration rendered from the files in
``broker/`` and this package, data in a folder of the caller's choice.
"""

from .influxdb import InfluxServer
from .mosquitto import MosquittoServer
from .ports import free_port
from .process import ManagedProcess, ProcessError

__all__ = ["InfluxServer", "ManagedProcess", "MosquittoServer", "ProcessError", "free_port"]

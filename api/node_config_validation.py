"""Check desired node settings with the edge agent's own schema before they are stored."""

from edge.node_settings import SettingsError, parse_node_settings


def validate_node_settings(settings: dict) -> str | None:
    """Return why the edge agent would reject ``settings``, or None when it would accept them.

    The node validates again when the configuration arrives, because its software version
    may differ from the API's. There an invalid configuration never replaces a working one.
    """
    try:
        parse_node_settings(settings)
    except SettingsError as exc:
        return str(exc)
    return None

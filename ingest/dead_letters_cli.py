"""``smartoffice-dead-letters``: list, count, replay or delete entries of the dead-letter store.

The store path and the broker come from the ingest settings (``SMARTOFFICE_DEAD_LETTER_PATH``,
``SMARTOFFICE_MQTT_HOST``, ``SMARTOFFICE_MQTT_PORT``...). Replays publish to that broker, so
for the local platform set ``SMARTOFFICE_MQTT_PORT=18830``. The login comes from
``SMARTOFFICE_MQTT_USERNAME`` with ``SMARTOFFICE_MQTT_PASSWORD`` or
``SMARTOFFICE_MQTT_PASSWORD_FILE``. The ingest identity may not publish, so replay with the
API's login; an entry the broker does not accept stays in the store, and the exit status is 1.
"""

import argparse
import json
import sys
from datetime import datetime, timezone

from pydantic import ValidationError

from .config import IngestSettings
from .dead_letters import DeadLetterStore
from .replay import ReplayError, replay


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smartoffice-dead-letters", description="List, count, replay or delete entries of the dead-letter store."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="print entries, oldest first")
    listing.add_argument("--reason", help="only entries with this reason, e.g. invalid_json")
    listing.add_argument("--limit", type=int, default=50, help="entries to print (default 50)")
    listing.add_argument("--after-id", type=int, default=0, help="start after this entry id (default 0)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")

    commands.add_parser("counts", help="print the number of entries per reason")

    replaying = commands.add_parser(
        "replay", help="publish entries again to their topics, then delete those the broker accepted"
    )
    chosen = replaying.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--id", type=int, nargs="+", dest="ids", help="entry ids")
    chosen.add_argument("--reason", help="every entry with this reason")
    chosen.add_argument("--all", action="store_true", help="every entry")

    deleting = commands.add_parser("delete", help="delete entries without replaying them")
    deleting.add_argument("--id", type=int, nargs="+", dest="ids", required=True, help="entry ids")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = IngestSettings()
    except ValidationError as exc:
        print(f"invalid settings:\n{exc}", file=sys.stderr)
        return 2

    if not settings.dead_letter_path.exists():
        print(
            f"no dead-letter store at {settings.dead_letter_path}: set SMARTOFFICE_DEAD_LETTER_PATH to the ingest's "
            "store (locally .local/dead-letters.sqlite3)",
            file=sys.stderr,
        )
        return 2

    store = DeadLetterStore(settings.dead_letter_path, settings.dead_letter_max_entries)
    try:
        return _run(args, settings, store)
    finally:
        store.close()


def _run(args: argparse.Namespace, settings: IngestSettings, store: DeadLetterStore) -> int:
    if args.command == "counts":
        counts = store.counts()
        for reason in sorted(counts):
            print(f"{reason}\t{counts[reason]}")
        print(f"total\t{sum(counts.values())}\t(evicted since creation: {store.evicted_total()})")
        return 0

    if args.command == "list":
        for entry in store.entries(reason=args.reason, limit=args.limit, after_id=args.after_id):
            received = datetime.fromtimestamp(entry.received_ms / 1000, tz=timezone.utc).isoformat()
            payload = entry.payload.decode("utf-8", errors="replace")
            if args.json:
                record = {"id": entry.id, "received": received, "topic": entry.topic, "reason": entry.reason,
                          "error": entry.error, "payload": payload, "line": entry.line}
                print(json.dumps(record, ensure_ascii=False))
            else:
                print(f"{entry.id}\t{received}\t{entry.reason}\t{entry.topic}\t{entry.error}\n\t{payload[:300]}")
        return 0

    if args.command == "delete":
        print(f"deleted {store.delete(args.ids)} entries")
        return 0

    if args.ids:
        found = {entry_id: store.get(entry_id) for entry_id in args.ids}
        missing = [entry_id for entry_id, entry in found.items() if entry is None]
        if missing:
            print(f"no dead letter with id {', '.join(map(str, missing))}: see 'list'", file=sys.stderr)
            return 1
        entries = list(found.values())
    else:
        entries = store.entries(reason=None if args.all else args.reason, limit=1_000_000)
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    try:
        result = replay(store, entries, settings.mqtt_host, settings.mqtt_port, settings.mqtt_username, password)
    except ReplayError as exc:
        print(f"replay failed: {exc}", file=sys.stderr)
        return 1
    print(f"replayed {len(result.replayed)} entries, {len(result.failed)} failed")
    for entry_id, error in result.failed.items():
        print(f"  {entry_id}: {error}", file=sys.stderr)
    return 0 if not result.failed else 1


if __name__ == "__main__":
    sys.exit(main())

"""Write the JSON Schema of each stream's payload to ``contract/schema/``.

Firmware written in other languages validates against these files. Run
``python -m contract.schema_export`` after changing a model; a test fails while the files
and the models disagree.
"""

import json
import sys
from pathlib import Path

from .payloads import MODEL_BY_STREAM

SCHEMA_DIR = Path(__file__).parent / "schema"


def schema_file_name(stream: str) -> str:
    """Return the schema file name of ``stream``, e.g. ``config-reported.schema.json``."""
    return stream.replace("/", "-") + ".schema.json"


def render_schemas() -> dict[str, str]:
    """Return the text of every schema file, keyed by file name."""
    rendered = {}
    for stream, model in MODEL_BY_STREAM.items():
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"smartoffice/v1/{schema_file_name(stream)}"
        rendered[schema_file_name(stream)] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return rendered


def main() -> int:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, text in render_schemas().items():
        (SCHEMA_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote {SCHEMA_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

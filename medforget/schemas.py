"""The published JSON Schemas of every document that crosses medforget's boundary.

``python -m medforget.schemas`` (re)writes them to ``schemas/`` in the repository; a test
checks the committed files match the code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medforget.audit import audit_schema
from medforget.calibrate import Calibration
from medforget.checkpoint import CheckpointInfo, checkpoint_schema
from medforget.ledger import ledger_schema
from medforget.request import RequestPreview, request_schema
from medforget.study import study_config_schema, study_result_schema
from medforget.tune import method_config_schema
from medforget.verify.report import report_schema

SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "request": request_schema,
    "report": report_schema,
    "checkpoint": checkpoint_schema,
    "ledger": ledger_schema,
    "audit": audit_schema,
    "method-config": method_config_schema,
    "study-config": study_config_schema,
    "study": study_result_schema,
    "calibration": Calibration.model_json_schema,
    "info": CheckpointInfo.model_json_schema,
    "preview": RequestPreview.model_json_schema,
}


def render(name: str) -> str:
    return json.dumps(SCHEMAS[name](), indent=2, sort_keys=True) + "\n"


def write_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in SCHEMAS:
        path = folder / f"{name}.schema.json"
        path.write_text(render(name))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")):
        print(p)

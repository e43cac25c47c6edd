"""Render the contract documents; shared by ``persona contracts export`` and its staleness test."""

import json
from pathlib import Path
from typing import Any

from persona_contracts.schemas import event_schemas
from persona_infra.settings import Settings
from persona_worker.app import create_worker
from persona_worker.asyncapi import asyncapi_document
from persona_worker.generators.offline import OfflineGenerator


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_contracts(docs: Path) -> dict[Path, str]:
    """Path → file content for every generated contract document under ``docs``."""
    files = {docs / "contracts" / name: _dump(schema) for name, schema in event_schemas().items()}
    # Default settings, not the environment's: the document must not depend on who runs it.
    settings = Settings(_env_file=None, kafka_bootstrap_servers="kafka:9092", kafka_topic_prefix="")
    worker = create_worker(settings, generator=OfflineGenerator())
    files[docs / "asyncapi.json"] = _dump(asyncapi_document(worker))
    return files

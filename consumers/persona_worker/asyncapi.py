"""The worker's AsyncAPI document, exported by FastStream from the real subscriber and publishers.

One adjustment: the request handler takes raw bytes (so an invalid event reaches
the DLQ byte for byte), which FastStream would document as an opaque payload.
The document says what a valid request looks like instead.
"""

import json
from typing import Any

from faststream.specification import AsyncAPI

from persona_contracts import PersonaRequested
from persona_worker import __version__
from persona_worker.app import Worker

REF_TEMPLATE = "#/components/schemas/{model}"


def asyncapi_document(worker: Worker) -> dict[str, Any]:
    spec = AsyncAPI(
        worker.broker,
        title="Persona pipeline worker",
        version=__version__,
        description="Consumes generation requests; publishes created and failed personas.",
    ).to_specification()
    document: dict[str, Any] = json.loads(spec.to_json())
    schemas = document["components"]["schemas"]
    request_schema = PersonaRequested.model_json_schema(ref_template=REF_TEMPLATE)
    schemas.update(request_schema.pop("$defs", {}))
    payload = f"{worker.settings.topics.requests}:Message:Payload"
    if payload not in schemas:
        raise RuntimeError(f"FastStream no longer names the request payload {payload!r}")
    schemas[payload] = request_schema
    return document

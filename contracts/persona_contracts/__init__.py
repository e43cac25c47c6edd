"""The shared language of the pipeline: event and persona models, topic names.

Pure data with no I/O, so a downstream service can depend on this package alone.
"""

from persona_contracts.events import (
    SCHEMA_VERSION,
    Constraints,
    PersonaCreated,
    PersonaFailed,
    PersonaRequested,
    ShardRequested,
)
from persona_contracts.persona import (
    BigFive,
    Location,
    Persona,
    PersonaDraft,
    Skeleton,
    TokenUsage,
)
from persona_contracts.requests import (
    BatchProgress,
    GenerationMode,
    RequestState,
    RequestStatus,
)
from persona_contracts.topics import Topics

__all__ = [
    "SCHEMA_VERSION",
    "BatchProgress",
    "BigFive",
    "Constraints",
    "GenerationMode",
    "Location",
    "Persona",
    "PersonaCreated",
    "PersonaDraft",
    "PersonaFailed",
    "PersonaRequested",
    "RequestState",
    "RequestStatus",
    "ShardRequested",
    "Skeleton",
    "TokenUsage",
    "Topics",
]

"""FastAPI dependencies: everything a route needs, resolved from the app's state.

The lifespan (``app.py``) builds these objects once per process; routes declare
what they use with ``Annotated`` types and never reach for globals.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from persona_pipeline.api.cursor import CursorCodec
from persona_pipeline.core.metrics import HttpMetrics
from persona_pipeline.core.mongo import Document
from persona_pipeline.core.persona_store import PersonaStore
from persona_pipeline.core.request_store import RequestStore
from persona_pipeline.core.settings import Settings
from persona_pipeline.core.stats_store import StatsStore
from persona_pipeline.producers.publisher import RequestPublisher


@dataclass(frozen=True, slots=True)
class Services:
    """The per-process objects the lifespan builds and every request shares."""

    settings: Settings
    mongo: AsyncMongoClient[Document]
    broker: KafkaBroker
    personas: PersonaStore
    requests: RequestStore
    stats: StatsStore
    publisher: RequestPublisher
    cursors: CursorCodec
    http_metrics: HttpMetrics


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(services: ServicesDep) -> Settings:
    return services.settings


def get_personas(services: ServicesDep) -> PersonaStore:
    return services.personas


def get_requests(services: ServicesDep) -> RequestStore:
    return services.requests


def get_stats(services: ServicesDep) -> StatsStore:
    return services.stats


def get_publisher(services: ServicesDep) -> RequestPublisher:
    return services.publisher


def get_cursors(services: ServicesDep) -> CursorCodec:
    return services.cursors


SettingsDep = Annotated[Settings, Depends(get_settings)]
PersonaStoreDep = Annotated[PersonaStore, Depends(get_personas)]
RequestStoreDep = Annotated[RequestStore, Depends(get_requests)]
StatsStoreDep = Annotated[StatsStore, Depends(get_stats)]
PublisherDep = Annotated[RequestPublisher, Depends(get_publisher)]
CursorsDep = Annotated[CursorCodec, Depends(get_cursors)]

"""Choose the generator from settings: OpenAI when a key is configured, else offline.

The offline generator is a labelled development default (every persona it makes
says ``generator="offline"``); it never silently replaces OpenAI when a key is set.
"""

from persona_pipeline.consumers.generators.base import PersonaGenerator
from persona_pipeline.consumers.generators.offline import OfflineGenerator
from persona_pipeline.consumers.generators.openai_generator import OpenAIGenerator
from persona_pipeline.core.settings import GeneratorChoice, Settings


def build_generator(settings: Settings) -> PersonaGenerator:
    if settings.active_generator is GeneratorChoice.OPENAI:
        return OpenAIGenerator.from_settings(settings)
    return OfflineGenerator()

"""Choose the generator from settings: OpenAI when a key is configured, else offline.

The offline generator is a labelled development default (every persona it makes
says ``generator="offline"``); it never silently replaces OpenAI when a key is set.
"""

from persona_infra.settings import GeneratorChoice, Settings
from persona_worker.generators.base import PersonaGenerator
from persona_worker.generators.offline import OfflineGenerator
from persona_worker.generators.openai_generator import OpenAIGenerator


def build_generator(settings: Settings) -> PersonaGenerator:
    if settings.active_generator is GeneratorChoice.OPENAI:
        return OpenAIGenerator.from_settings(settings)
    return OfflineGenerator()

"""The persona pipeline's workspace: the ``persona`` command and the embedded development stack."""

from importlib.metadata import version

__version__ = version("persona-pipeline")

"""The ``persona`` command line: ``dev``, ``api``, ``worker`` and ``request``."""

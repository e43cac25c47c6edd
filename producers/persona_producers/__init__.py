"""Publishing generation requests: the async publisher and the ``persona request`` CLI."""

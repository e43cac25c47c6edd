"""The generation worker: consumes requests, generates, stores, publishes."""

"""Runtime plumbing shared by the producers, the worker and the API."""

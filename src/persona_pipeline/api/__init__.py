"""The FastAPI read API (and the 202-accepting write that publishes a request)."""

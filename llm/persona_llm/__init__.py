"""LLM calls shared by the worker and the API: errors, rate limiting, retries, structured chat.

The worker's persona generator and any other LLM caller, such as a planner the API
runs too, make the same kind of call: one Chat Completions request with Structured
Outputs over the ``openai`` SDK, with the same error mapping, retries and
client-side rate limits. That machinery lives here rather than in ``consumers``
because the API must never import the worker.
"""

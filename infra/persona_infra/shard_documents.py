"""The shard document the worker writes and the API reads for a request's progress.

One document per shard of a large request (``_id`` ``"<request_id>:<shard>"``) with
the ordinals it covers (``first`` up to ``end``), ``pending`` → ``running`` →
``done``; a done shard records what it ``stored``. The worker's side is
``persona_worker.shard_writes``, the API's ``persona_api.request_records``.
"""

import uuid

PENDING, RUNNING, DONE = "pending", "running", "done"


def shard_id(request_id: uuid.UUID, shard: int) -> str:
    return f"{request_id}:{shard}"

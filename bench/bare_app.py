"""The ceiling of the benchmark: a FastAPI route that reads nothing and answers 204.

It runs under the same uvicorn options (workers, log configuration, no access log) as the
webhook, so the ratio between the two is the cost of verifying, decoding and committing.
"""

from __future__ import annotations

from fastapi import FastAPI, Response

app = FastAPI()


@app.post("/uplinks/kpn", status_code=204)
async def bare() -> Response:
    """Answer 204 and do nothing else."""
    return Response(status_code=204)

"""Run by KServe's own environment (.venv-kserve): ``python kserve_client.py URL MODEL`` with the request's
inputs as JSON on stdin; prints what KServe's v2 REST client made of the server's answers, as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def main(url: str, model: str, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=20, retries=0))
    try:
        request = InferRequest(
            model_name=model,
            infer_inputs=[InferInput(i["name"], i["shape"], i["datatype"], i["data"]) for i in inputs],
            request_id="kserve-1",
        )
        response = await client.infer(url, request, model_name=model)
        return {
            "live": await client.is_server_live(url),
            "ready": await client.is_server_ready(url),
            "model_ready": await client.is_model_ready(url, model),
            "id": response.id,
            "model_name": response.model_name,
            "model_version": response.model_version,
            "outputs": {
                output.name: {
                    "datatype": output.datatype,
                    "shape": list(output.shape),
                    "data": output.as_numpy().reshape(-1).tolist(),
                }
                for output in response.outputs
            },
        }
    finally:
        await client.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], json.load(sys.stdin))), default=str))

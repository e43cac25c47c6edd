"""The fake answers Azure OpenAI's chat paths, so the Azure client is tested for real.

``AsyncAzureOpenAI`` names the deployment in the path, sends the key as
``api-key`` and needs ``api-version`` in the query; the fake records all three.
"""

import json

import httpx
import openai

from tests.support.fake_openai import FakeOpenAI

API_VERSION = "2024-10-21"


async def test_azure_client_reaches_the_chat_logic() -> None:
    async with FakeOpenAI() as fake:
        assert not fake.azure_endpoint.endswith("/v1")
        client = openai.AsyncAzureOpenAI(
            azure_endpoint=fake.azure_endpoint,
            azure_deployment="personas-east",
            api_version=API_VERSION,
            api_key="azure-key",
            max_retries=0,
        )
        async with client:
            completion = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Occupation: baker"}],
            )
        assert "baker" in json.loads(completion.choices[0].message.content or "{}")["bio"]
        assert fake.request_paths == ["/openai/deployments/personas-east/chat/completions"]
        assert fake.request_queries == [{"api-version": API_VERSION}]
        assert fake.request_headers[0]["api-key"] == "azure-key"
        assert len(fake.requests) == len(fake.replies) == 1


async def test_openai_paths_record_an_empty_query() -> None:
    async with (
        FakeOpenAI() as fake,
        openai.AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client,
    ):
        await client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
        assert fake.request_paths == ["/v1/chat/completions"]
        assert fake.request_queries == [{}]


async def test_azure_path_without_api_version_is_refused() -> None:
    async with FakeOpenAI() as fake, httpx.AsyncClient(base_url=fake.azure_endpoint) as http:
        response = await http.post(
            "/openai/deployments/personas-east/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"api-key": "azure-key"},
        )
        assert response.status_code == 400
        assert response.json()["error"]["message"] == (
            "Missing required query parameter: api-version"
        )
        assert fake.requests == []
        assert fake.calls == 1

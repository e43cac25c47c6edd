"""Unknown query parameters are a 422 problem, on plain and model query parameters."""

from typing import Annotated

from fastapi import Depends, FastAPI, Query
from fastapi.testclient import TestClient
from pydantic import AliasChoices, BaseModel, Field

from persona_api.problems import install_problem_handlers
from persona_api.query_params import reject_unknown_query_params

KEY = "correct-horse-battery-staple"


class Window(BaseModel):
    start: int = 0
    end: int = Field(default=0, alias="until")


def paging(offset: int = 0) -> int:
    return offset


def test_unknown_query_parameters_are_a_422_problem() -> None:
    app = FastAPI(dependencies=[Depends(reject_unknown_query_params)])
    install_problem_handlers(app)

    @app.get("/plain")
    def plain(
        page: Annotated[int, Depends(paging)],
        item_query: Annotated[str | None, Query(alias="item-query")] = None,
        either: Annotated[
            int | None, Query(validation_alias=AliasChoices("either", "or_this"))
        ] = None,
    ) -> dict[str, object]:
        return {"page": page, "q": item_query, "either": either}

    @app.get("/model")
    def model(window: Annotated[Window, Query()]) -> Window:
        return window

    client = TestClient(app)
    for path in [
        "/plain?offset=1&item-query=x&either=1",
        "/plain?or_this=2",
        "/model?start=1&until=2",
        "/plain",
    ]:
        assert client.get(path).status_code == 200, path
    for path, unknown in [
        ("/plain?item_query=x", "item_query"),  # the alias is the name, not the Python name
        ("/plain?offset=1&offest=2", "offest"),
        ("/model?start=1&stop=2", "stop"),
    ]:
        response = client.get(path)
        assert response.status_code == 422, path
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"] == [
            {"loc": ["query", unknown], "msg": "Unknown query parameter", "type": "extra_forbidden"}
        ]
    long_name = client.get("/plain", params={"x" * 500: "1"}).json()
    assert long_name["errors"][0]["loc"] == ["query", "x" * 64]

"""What ``/openapi.json`` says beyond the route signatures: problem responses, the request
bodies that routes read themselves (multipart or JSON), and the result media types."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..models import ProblemModel, ScoreJSON, ScoreOptions, ScoreResult

#: media type of each result format
MEDIA = {
    "json": "application/json",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "html": "text/html",
}

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemModel, "content": {"application/problem+json": {}},
           "description": desc}
    for code, desc in {
        400: "Malformed input", 401: "API key missing", 403: "API key not valid",
        404: "Not found", 406: "Format not available", 409: "Not done yet",
        413: "Too large",
        415: "Unsupported format", 422: "Invalid parameters or too little gene coverage",
        429: "Too many queued jobs", 500: "Internal error", 503: "Not ready",
    }.items()
}  # fmt: skip


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entries of the problem documents a route may send."""
    return {c: PROBLEM_RESPONSES[c] for c in codes}


def _multipart_schema() -> dict[str, Any]:
    props: dict[str, Any] = {
        "file": {"type": "string", "format": "binary", "description": "The expression matrix."},
        "signatures": {
            "type": "string",
            "format": "binary",
            "description": "Optional signature file (.gmt/.yaml/.json).",
        },
        "definition": {
            "type": "string",
            "format": "binary",
            "description": "Optional index definition YAML.",
        },
        "reference": {
            "type": "string",
            "format": "binary",
            "description": "Optional reference cohort JSON.",
        },
    }
    opt = ScoreOptions.model_json_schema()
    for k, v in opt["properties"].items():
        v = dict(v)
        if k == "params":
            v = {"type": "string", "description": "Method parameters as a JSON object."}
        props[k] = v
    return {"type": "object", "properties": props, "required": ["file"]}


#: ``openapi_extra`` of the routes that take a matrix (they parse the body themselves)
SCORE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": _multipart_schema()},
            "application/json": {"schema": {"$ref": "#/components/schemas/ScoreJSON"}},
        },
    }
}
#: the 200 content of a scoring result
RESULT_CONTENT: dict[str, Any] = {
    "application/json": {"schema": {"$ref": "#/components/schemas/ScoreResult"}},
    "text/csv": {"schema": {"type": "string"}},
    MEDIA["parquet"]: {"schema": {"type": "string", "format": "binary"}},
}


def _fix_problem_content(schema: dict[str, Any]) -> None:
    """Problem responses are served as application/problem+json only."""
    for path in schema.get("paths", {}).values():
        for op in path.values():
            for code, resp in op.get("responses", {}).items():
                content = resp.get("content", {})
                if code.isdigit() and int(code) >= 400 and "application/json" in content:
                    content["application/problem+json"] = content.pop("application/json")


def install(app: FastAPI) -> None:
    """Generate the schema once with the body models the routes reference by ``$ref``."""

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (ScoreJSON, ScoreResult):
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for k, v in js.pop("$defs", {}).items():
                comps.setdefault(k, v)
            comps[model.__name__] = js
        _fix_problem_content(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = custom_openapi  # type: ignore[method-assign]

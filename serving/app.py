"""FastAPI app: ``POST /predict`` (one formula or a list), ``GET /health``, ``GET /model``.

Limits: request bodies over ``MAX_BODY_BYTES`` get 413; more than ``MAX_BATCH`` formulas get 422. A bad
formula gets 422 with a message naming it (and its index in a list). Start it with ``nacond serve``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator

from ml.errors import NacondError
from serving.predictor import Predictor

MAX_BATCH = 1000
MAX_BODY_BYTES = 1_000_000


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, counting the bytes actually received (a chunked
    upload has no Content-Length), so an oversized body is never buffered whole."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        detail = {"detail": f"request body larger than {self.max_bytes} bytes"}
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            return await JSONResponse(status_code=413, content=detail)(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(status_code=413, detail=detail["detail"])
            return message

        await self.app(scope, counted, send)


class PredictRequest(BaseModel):
    formula: str | None = Field(default=None, description="One composition, e.g. 'Na3PS4'. Formulas only: "
                                                           "nothing is read from the server's disk.")
    formulas: list[str] | None = Field(default=None, description=f"Up to {MAX_BATCH} compositions.")
    cif: str | None = Field(default=None, description="CIF content as text (not a path); same limits as a CIF "
                                                      "file: 1 MB body, 2,000 sites, 192 symmetry operations.")
    temperature: str | float | None = Field(default=None, description="e.g. '60C', '333K' or 333.15 (kelvin); "
                                                                      "default 25 C.")

    @model_validator(mode="after")
    def one_of(self) -> PredictRequest:
        if sum(v is not None for v in (self.formula, self.formulas, self.cif)) != 1:
            raise ValueError("give exactly one of 'formula', 'formulas' or 'cif'")
        if self.formulas is not None and not 1 <= len(self.formulas) <= MAX_BATCH:
            raise ValueError(f"'formulas' must hold 1 to {MAX_BATCH} items, got {len(self.formulas)}")
        return self


def create_app(predictor: Predictor | None = None) -> FastAPI:
    state: dict[str, Predictor] = {}

    def get() -> Predictor:
        if "p" not in state:
            state["p"] = predictor or Predictor.load()
        return state["p"]

    app = FastAPI(title="nacond", version="0.1.0",
                  description="Room-temperature ionic conductivity and activation energy of Na-ion solid "
                              "electrolytes, with 90 % intervals and an applicability-domain flag.")

    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError):
        msgs = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": "; ".join(msgs)})

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model_version": get().model_version}

    @app.get("/model")
    def model() -> dict[str, Any]:
        return get().info()

    @app.post("/predict")
    def predict(req: PredictRequest):
        p = get()
        try:
            if req.cif is not None:
                from ml.structures.cif import parse_cif_text

                items = [parse_cif_text(req.cif, "posted CIF")]
            else:
                items = [req.formula] if req.formula is not None else req.formulas
            results = p.predict_many(items, on_error="raise", temperature_K=req.temperature, allow_paths=False)
        except NacondError as exc:
            return JSONResponse(status_code=422, content={"detail": str(exc)})
        preds = [r.to_dict() for r in results]
        return {"predictions": preds} if req.formulas is not None else {"prediction": preds[0]}

    return app

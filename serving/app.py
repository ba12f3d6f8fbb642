"""FastAPI app: ``POST /predict`` (one formula or a list), ``GET /health``, ``GET /model``.

Limits: request bodies over ``MAX_BODY_BYTES`` get 413; more than ``MAX_BATCH`` formulas get 422. A bad
formula gets 422 with a message naming it (and its index in a list). Start it with ``nacond serve``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator

from ml.errors import NacondError
from serving.predictor import Predictor

MAX_BATCH = 1000
MAX_BODY_BYTES = 1_000_000


class PredictRequest(BaseModel):
    formula: str | None = Field(default=None, description="One composition, e.g. 'Na3PS4'.")
    formulas: list[str] | None = Field(default=None, description=f"Up to {MAX_BATCH} compositions.")
    temperature: str | float | None = Field(default=None, description="e.g. '60C', '333K' or 333.15 (kelvin); "
                                                                      "default 25 C.")

    @model_validator(mode="after")
    def one_of(self) -> PredictRequest:
        if (self.formula is None) == (self.formulas is None):
            raise ValueError("give exactly one of 'formula' or 'formulas'")
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

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return JSONResponse(status_code=413, content={"detail": f"request body larger than "
                                                                     f"{MAX_BODY_BYTES} bytes"})
        return await call_next(request)

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
        items = [req.formula] if req.formula is not None else req.formulas
        try:
            results = p.predict_many(items, on_error="raise", temperature_K=req.temperature)
        except NacondError as exc:
            return JSONResponse(status_code=422, content={"detail": str(exc)})
        preds = [r.to_dict() for r in results]
        return {"prediction": preds[0]} if req.formula is not None else {"predictions": preds}

    return app

"""FastAPI app: ``POST /predict`` (one formula or a list), ``GET /health``, ``GET /model``.

Limits: request bodies over ``MAX_BODY_BYTES`` get 413 (counted as the bytes arrive, so chunked uploads without a
``Content-Length`` are caught too); more than ``MAX_BATCH`` formulas get 422. A bad formula, an unknown field or a
malformed body gets 422 with ``{"detail": "<message naming it>"}``. The OpenAPI page ``/docs`` works offline: its
Swagger UI assets are served by the app itself (``fastapi-offline``). Start it with ``nacond serve``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ml.errors import NacondError
from ml.utils import strict_json as strict
from serving.predictor import Predictor

MAX_BATCH = 1000
MAX_BODY_BYTES = 1_000_000


class PredictRequest(BaseModel):
    """Exactly one of ``formula`` / ``formulas`` / ``cif``; unknown fields are rejected (422), not ignored."""

    model_config = ConfigDict(extra="forbid")

    formula: str | None = Field(default=None, description="One composition, e.g. 'Na3PS4'. Formulas only: "
                                                           "nothing is read from the server's disk.")
    formulas: list[str] | None = Field(default=None, description=f"Up to {MAX_BATCH} compositions.")
    cif: str | None = Field(default=None, description="CIF content as text (not a path); same limits as a CIF "
                                                      "file: 1 MB body, 2,000 sites, 192 symmetry operations.")
    temperature: str | float | None = Field(default=None, description="e.g. '60C', '333K' or 333.15 (a number is "
                                                                      "kelvin); default 25 C.")

    @model_validator(mode="after")
    def one_of(self) -> PredictRequest:
        if sum(v is not None for v in (self.formula, self.formulas, self.cif)) != 1:
            raise ValueError("give exactly one of 'formula', 'formulas' or 'cif'")
        if self.formulas is not None and not 1 <= len(self.formulas) <= MAX_BATCH:
            raise ValueError(f"'formulas' must hold 1 to {MAX_BATCH} items, got {len(self.formulas)}")
        return self


class Neighbour(BaseModel):
    formula: str
    log10_sigma_S_cm: float | None = Field(description="Measured log10 conductivity (S/cm) at 25 C, if known.")
    ea_eV: float | None = Field(description="Measured activation energy (eV), if known.")
    doi: str | None
    distance: float = Field(description="Distance in the model's feature space.")


class Prediction(BaseModel):
    input: str
    formula: str
    log10_sigma_S_cm: float | None = Field(description="Predicted log10 ionic conductivity (S/cm).")
    sigma_S_cm: float | None = Field(description="Predicted ionic conductivity (S/cm).")
    log10_sigma_interval: list[float | None] = Field(description="90 % interval of log10 sigma (S/cm).")
    ea_eV: float | None = Field(description="Predicted activation energy (eV).")
    ea_interval_eV: list[float | None] = Field(description="90 % interval of Ea (eV).")
    in_domain: bool = Field(description="False when the composition lies outside the training data's domain.")
    domain_notes: list[str]
    neighbours: list[Neighbour] = Field(description="Nearest training compositions and their sources.")
    model_version: str
    family: str
    temperature_K: float


class PredictResponse(BaseModel):
    """``prediction`` for a ``formula`` request, ``predictions`` (in order) for a ``formulas`` request."""

    prediction: Prediction | None = None
    predictions: list[Prediction] | None = None


class ErrorBody(BaseModel):
    """Every error of this API: one message naming what is wrong."""

    detail: str = Field(examples=["formula 'Xx2O' contains 'Xx', which is not a chemical element"])


class Health(BaseModel):
    status: str
    model_version: str


EXAMPLES = {
    "one": {"summary": "one composition", "value": {"formula": "Na3Zr2Si2PO12"}},
    "many": {"summary": "several compositions", "value": {"formulas": ["Na3PS4", "Na3.4Zr1.6Sc0.4Si2PO12"]}},
    "hot": {"summary": "at 60 C (Arrhenius model)", "value": {"formula": "Na3SbS4", "temperature": "60C"}},
}
ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorBody, "description": f"Request body larger than {MAX_BODY_BYTES} bytes."},
    422: {"model": ErrorBody, "description": "Unreadable formula, unknown field, malformed JSON, or more than "
                                             f"{MAX_BATCH} formulas."},
}


class _BodyLimit:
    """ASGI middleware: 413 once more than ``limit`` body bytes are announced or received."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            response = JSONResponse(status_code=413, content={"detail": self._message()})
            return await response(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(status_code=413, detail=self._message())
            return message

        return await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"request body larger than {self.limit} bytes"


def create_app(predictor: Predictor | None = None):
    state: dict[str, Predictor] = {}

    def get() -> Predictor:
        if "p" not in state:
            state["p"] = predictor or Predictor.load()
        return state["p"]

    app = FastAPIOffline(title="nacond", version="0.1.0",
                         description="Room-temperature ionic conductivity and activation energy of Na-ion solid "
                                     "electrolytes, with 90 % intervals and an applicability-domain flag.")
    app.add_middleware(_BodyLimit, limit=MAX_BODY_BYTES)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError):
        msgs = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e.get("loc", ()))
            msg = e.get("msg", "")
            if e.get("type") == "extra_forbidden":
                msg = "unknown field (the fields are formula, formulas, temperature)"
            msgs.append(f"{loc}: {msg}")
        return JSONResponse(status_code=422, content={"detail": "; ".join(msgs)})

    @app.get("/health", response_model=Health)
    def health() -> dict[str, Any]:
        return {"status": "ok", "model_version": get().model_version}

    @app.get("/model")
    def model() -> dict[str, Any]:
        """The loaded model: version, source, learner, training-data checksum and cross-validation metrics."""
        return strict(get().info())

    @app.post("/predict", response_model=PredictResponse, response_model_exclude_unset=True, responses=ERRORS)
    def predict(req: PredictRequest = Body(openapi_examples=EXAMPLES)):  # noqa: B008 - FastAPI's idiom
        """Predict log10 sigma (S/cm), Ea (eV) and their 90 % intervals, with the applicability domain and the
        nearest training compositions."""
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
        preds = [strict(r.to_dict()) for r in results]
        return {"predictions": preds} if req.formulas is not None else {"prediction": preds[0]}

    return app

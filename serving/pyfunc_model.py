"""MLflow pyfunc wrapper of a nacond model directory ("models from code": nothing is pickled).

Logged by ``nacond train``; ``mlflow models serve -m models:/<name>/<version>`` then answers a JSON body with a
``formula`` column (and optionally one ``temperature`` value such as "60C"). It goes through the same
:class:`serving.Predictor` as the Python API and the REST server, so all three give the same numbers.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class NacondPyfunc(PythonModel):
    def load_context(self, context):
        from serving.predictor import Predictor

        self.predictor = Predictor.load(context.artifacts["model_dir"])

    def predict(self, context, model_input: pd.DataFrame, params=None):  # the hint: MLflow checks the input
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if "formula" not in frame:
            raise ValueError("input must have a 'formula' column")
        temperature = None
        if "temperature" in frame and frame["temperature"].notna().any():
            values = frame["temperature"].dropna().unique()
            if len(values) > 1:
                raise ValueError("give one temperature per request")
            temperature = values[0]
        results = self.predictor.predict_many([str(f) for f in frame["formula"]], on_error="skip",
                                              temperature_K=temperature)
        out = pd.DataFrame([r.to_row() for r in results])
        # a failed row has no numbers: None rather than NaN, so the served JSON is strict (null, not NaN)
        return out.astype(object).where(out.notna(), None)


mlflow.models.set_model(NacondPyfunc())

"""MLflow pyfunc wrapper of a nacond model directory ("models from code": nothing is pickled).

Logged by ``nacond train``; ``mlflow models serve -m models:/<name>/<version>`` then answers a JSON body with
a ``formula`` column.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class NacondPyfunc(PythonModel):
    def load_context(self, context):
        from ml.models import NacondModel

        self.model = NacondModel.load(context.artifacts["model_dir"])

    def predict(self, context, model_input, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if "formula" not in frame:
            raise ValueError("input must have a 'formula' column")
        out = self.model.predict_with_domain([str(f) for f in frame["formula"]])
        out.insert(0, "formula", list(frame["formula"]))
        return out


mlflow.models.set_model(NacondPyfunc())

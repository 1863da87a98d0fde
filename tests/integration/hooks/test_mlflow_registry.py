"""MLflowHook's artifacts and registry calls against real MLflow servers.

Three servers: plain (local proxied artifacts), basic-auth (every artifact request authenticated with
the connection's credentials, none from the environment), and S3 artifacts on the moto server.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_provider.core.model_io import save_sklearn_model
from mlops_provider.core.registry_names import MODEL_ARTIFACT_PATH
from mlops_provider.hooks.mlflow import MLflowHook
from tests.support.services import free_port

pytestmark = pytest.mark.integration


def _fitted_model():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"x": rng.normal(size=200), "color": rng.choice(["red", "blue"], size=200)})
    target = (frame["x"] + (frame["color"] == "red") > 0.5).astype(int)
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("cat", OneHotEncoder(handle_unknown="ignore"), ["color"])], remainder="passthrough"
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(frame, target)
    return model, frame


def _hook_for(airflow_connection, name: str, **fields) -> MLflowHook:
    return MLflowHook(mlflow_conn_id=airflow_connection(name, conn_type="mlflow", **fields))


@pytest.fixture(params=["plain", "basic_auth", "s3_artifacts"])
def hook(request, airflow_connection) -> MLflowHook:
    if request.param == "plain":
        return _hook_for(airflow_connection, "mlflow_reg", host=request.getfixturevalue("mlflow_server"))
    if request.param == "basic_auth":
        uri, user, password = request.getfixturevalue("mlflow_auth_server")
        return _hook_for(airflow_connection, "mlflow_reg_auth", host=uri, login=user, password=password)
    uri, _ = request.getfixturevalue("mlflow_s3_server")
    return _hook_for(airflow_connection, "mlflow_reg_s3", host=uri)


def test_artifacts_round_trip_and_model_registers_once_and_loads_by_alias(hook, tmp_path, monkeypatch):
    for variable in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    experiment_id = hook.get_or_create_experiment(f"registry-{free_port()}")
    assert hook.get_or_create_experiment(hook.client.get_experiment(experiment_id).name) == experiment_id
    run_id = hook.client.create_run(experiment_id).info.run_id

    model, frame = _fitted_model()
    save_sklearn_model(model, tmp_path / "model", input_example=frame.head(5))
    hook.upload_artifacts(run_id, tmp_path / "model", MODEL_ARTIFACT_PATH)
    hook.upload_artifact_bytes(run_id, "reports/card.md", b"# card\n")

    downloaded = hook.download_artifacts(run_id, "reports/card.md", tmp_path / "dl")
    assert downloaded.read_bytes() == b"# card\n"
    folder = hook.download_artifacts(run_id, MODEL_ARTIFACT_PATH, tmp_path / "dl")
    assert {"MLmodel", "model.skops", "requirements.txt"} <= {p.name for p in folder.iterdir()}
    assert "scikit-learn==" in (folder / "requirements.txt").read_text()

    name = f"registry_model_{free_port()}"
    assert hook.get_version_by_alias(name, "champion") is None
    version, created = hook.registry.register_run_model(name, run_id, tags={"airflow.run_id": "r1"})
    again, created_again = hook.registry.register_run_model(name, run_id)
    assert (created, created_again) == (True, False)
    assert again.version == version.version == "1"
    hook.client.set_registered_model_alias(name, "champion", version.version)
    assert hook.get_version_by_alias(name, "champion").version == "1"

    loaded = hook.load_sklearn_model(name, alias="champion")
    np.testing.assert_allclose(loaded.predict_proba(frame), model.predict_proba(frame))
    assert hook.model_version_url(name, "1").endswith(f"/#/models/{name}/versions/1")


def test_unsafe_artifact_paths_are_refused(mlflow_server, airflow_connection, tmp_path):
    hook = _hook_for(airflow_connection, "mlflow_paths", host=mlflow_server)
    run_id = hook.client.create_run(hook.get_or_create_experiment("paths")).info.run_id
    with pytest.raises(ValueError, match="Unsafe artifact path"):
        hook.download_artifacts(run_id, "../../etc", tmp_path)
    with pytest.raises(ValueError, match="Unsafe artifact path"):
        hook.upload_artifact_bytes(run_id, "../escape.txt", b"x")

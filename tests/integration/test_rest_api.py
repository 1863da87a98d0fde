"""The churn classifier's training DAG driven through Airflow's REST API on the live stack (scheduler,
LocalExecutor, MLflow).

``mlops_train__churn_classifier`` is generated from ``include/models/churn.yaml``. Ten days of
validated churn partitions (2026-08-01..10, days no other live-stack test uses) are published straight
into the stack's data root, then:

* the official Python client (``apache-airflow-client``, authenticated with the JWT from
  ``POST /auth/token``) triggers the DAG with conf; the run trains, registers and promotes,
  and the champion loaded from the registry predicts, with lineage naming exactly its partitions;
* a plain HTTP request with a bearer token triggers it again with the same grid: the run succeeds
  and registers a challenger that ties the champion, so the champion stays;
* a conf value that breaks its Param is refused with HTTP 400 by Param validation and creates no run;
* a conf key that is not a Param (such as the old ``model``, or a typo) is accepted by Airflow, but
  the run fails at its first task, without retry, naming the key (with a "did you mean");
* requests without a valid token (none, garbage, forged, expired) are refused.

The partitions are removed and the DAG paused again when the module ends, so other live-stack tests
(the ingest backfill checks that ``validated/`` holds exactly its own days) see the stack as before.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from typing import TYPE_CHECKING, Any

import pytest

from include.example_data import churn
from mlops_provider.pipelines.ids import train_dag_id
from tests.conftest import REPO_ROOT
from tests.support.live_stack import http, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.live_stack import LiveStack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

MODEL = "churn_classifier"  # include/models/churn.yaml
DAG_ID = train_dag_id(MODEL)
PARAMS = {
    "end_date",
    "window_days",
    "grid",
    "force_promote",
    "reason",
    "drifted_features",
    "report_uri",
    "window",
}
DATASET = "churn"
ROWS = 1_000
FIRST_DAY = dt.date(2026, 8, 1)
DAYS = 10
DAY_LIST = [FIRST_DAY + dt.timedelta(days=i) for i in range(DAYS)]
HOLDOUT_DAYS = 5  # include/models/churn.yaml
TRAINED_ON = [d.isoformat() for d in DAY_LIST[: DAYS - HOLDOUT_DAYS]]  # fit + selection days
GRID = {"C": [0.1]}  # one candidate instead of the configured four: the conf reaches the tasks
CONF = {
    "end_date": DAY_LIST[-1].isoformat(),
    "window_days": DAYS,
    "grid": GRID,
    "force_promote": True,
    "reason": "REST API test (python client)",
}
RUN_DEADLINE = 300.0


def runs_count(stack: LiveStack) -> int:
    return int(stack.dag_runs(DAG_ID, limit=1)["total_entries"])


# -------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def training_data(live_stack: LiveStack) -> Iterator[dict[str, str]]:
    """DAYS validated partitions in the stack's data root and the DAG unpaused; ``ds -> sha256``.

    Removed (and the DAG paused) at the end of the module.
    """
    from mlops_provider.hooks.storage import DatasetStorageHook

    live_stack.wait_for_dag(DAG_ID)
    storage = DatasetStorageHook(root_uri=live_stack.data_root)
    zone = live_stack.data_path / DATASET / "validated"
    assert not any((zone / f"ds={day}").exists() for day in DAY_LIST), "days already published"
    digests = {}
    try:
        for day in DAY_LIST:
            storage.write_partition(DATASET, "validated", day, churn.generate_day(day, ROWS))
            digests[day.isoformat()] = storage.read_manifest(DATASET, "validated", day).sha256
        live_stack.set_paused(DAG_ID, False)
        yield digests
    finally:
        live_stack.set_paused(DAG_ID, True)
        for day in DAY_LIST:
            shutil.rmtree(zone / f"ds={day}", ignore_errors=True)


@pytest.fixture(scope="module")
def client_run(live_stack: LiveStack, training_data: dict[str, str]) -> dict[str, Any]:
    """The DAG triggered through the official Python client; waits for it to end."""
    from airflow_client.client import ApiClient, Configuration, DagRunApi, TriggerDAGRunPostBody

    token = live_stack.token()  # the access_token of POST /auth/token
    began = time.monotonic()
    with ApiClient(Configuration(host=live_stack.airflow_url, access_token=token)) as api:
        triggered = DagRunApi(api).trigger_dag_run(
            DAG_ID, TriggerDAGRunPostBody(logical_date=None, conf=CONF)
        )
        run_id = triggered.dag_run_id
        live_stack.wait_for_dag_run(DAG_ID, run_id, RUN_DEADLINE)
        run = DagRunApi(api).get_dag_run(DAG_ID, run_id)
    seconds = time.monotonic() - began
    print(f"\n{DAG_ID} run {run_id} (python client) succeeded in {seconds:.1f} s")
    return {
        "triggered": triggered,
        "run": run,
        "register": live_stack.xcom(DAG_ID, run_id, "register"),
        "seconds": seconds,
    }


@pytest.fixture
def mlflow_tracking(live_stack: LiveStack) -> Iterator[str]:
    """The global MLflow tracking URI set to the stack's server for one test, then restored."""
    import mlflow
    from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

    previous = mlflow.get_tracking_uri() if is_tracking_uri_set() else None
    mlflow.set_tracking_uri(live_stack.mlflow_url)
    try:
        yield live_stack.mlflow_url
    finally:
        mlflow.set_tracking_uri(previous)


# ----------------------------------------------------------------------------------------- tests


def test_python_client_triggers_training_with_conf(live_stack: LiveStack, client_run: dict) -> None:
    from airflow_client.client import DagRunState, DagRunTriggeredByType, DagRunType

    triggered, run = client_run["triggered"], client_run["run"]
    assert triggered.logical_date is None
    assert triggered.triggered_by == DagRunTriggeredByType.REST_API
    assert triggered.triggering_user_name == "admin"
    assert run.run_type == DagRunType.MANUAL
    assert run.state == DagRunState.SUCCESS
    assert run.conf == CONF

    # The grid of the conf replaced the configured one: one mapped candidate.
    tasks = live_stack.task_states(DAG_ID, run.dag_run_id)
    assert tasks == {
        "prepare": "success",
        "train[0]": "success",
        "evaluate": "success",
        "register": "success",
    }
    plan = live_stack.xcom(DAG_ID, run.dag_run_id, "prepare", key="plan")
    assert plan["window"] == {"start": TRAINED_ON[0], "end": CONF["end_date"], "days": DAYS}

    register = client_run["register"]
    assert register["model"] == MODEL
    assert register["promoted"] is True  # force_promote: no comparison with an earlier champion
    assert register["aliases"] == ["challenger", "champion"]


# Loading a skops model looks names up across loaded modules, tripping Airflow's deprecation shims.
@pytest.mark.filterwarnings(r"ignore:The `airflow\.")
def test_champion_loads_predicts_and_names_its_partitions(
    live_stack: LiveStack, client_run: dict, training_data: dict[str, str], mlflow_tracking: str
) -> None:
    import mlflow.pyfunc
    import numpy as np
    from mlflow import MlflowClient

    from mlops_provider.core.evaluation import classification_metrics
    from mlops_provider.core.training import features_and_target
    from mlops_provider.operators._model import load_model_config

    register = client_run["register"]
    client = MlflowClient(tracking_uri=mlflow_tracking)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.version == register["version"]
    assert champion.run_id == register["run_id"]
    assert champion.tags["airflow.run_id"] == client_run["run"].dag_run_id
    assert champion.tags["mlops.reason"] == CONF["reason"]

    # Lineage: the fit + selection partitions of the window, by name and digest; never the holdout.
    run = client.get_run(champion.run_id)
    assert run.data.tags["airflow.dag_id"] == DAG_ID
    assert run.data.tags["airflow.run_id"] == client_run["run"].dag_run_id
    assert run.data.params["C"] == "0.1"
    expected = ",".join(f"{ds}:{training_data[ds][:12]}" for ds in TRAINED_ON)
    assert run.data.tags["mlops.partitions"] == f"{DATASET}@{expected}"
    inputs = run.inputs.dataset_inputs
    assert [entry.dataset.name for entry in inputs] == [f"{DATASET}/ds={ds}" for ds in TRAINED_ON]
    for entry in inputs:
        ds = entry.dataset.name.split("ds=")[1]
        assert json.loads(entry.dataset.source)["sha256"] == training_data[ds]

    # The registered model transforms raw feature rows itself: score a day it never saw.
    model, dataset = load_model_config(str(REPO_ROOT / "include" / "models" / "churn.yaml"))
    assert model.holdout_days == HOLDOUT_DAYS
    unseen = churn.generate_day(DAY_LIST[-1] + dt.timedelta(days=1), 2_000).to_pandas()
    X, y = features_and_target(unseen, dataset)
    served = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    proba = np.asarray(served.predict(X))
    assert proba.shape == (len(X), 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert classification_metrics(y, proba[:, 1])["roc_auc"] > 0.7


def test_plain_http_with_a_token_triggers_training(
    live_stack: LiveStack, client_run: dict, mlflow_tracking: str
) -> None:
    """The same model trained again through curl-style HTTP: it ties the champion, which stays."""
    from mlflow import MlflowClient

    status, body = http(
        "POST", f"{live_stack.airflow_url}/auth/token", {"username": "admin", "password": live_stack.password}
    )
    assert status in (200, 201), body
    token = body["access_token"]
    conf = {**CONF, "force_promote": False, "reason": "REST API test (plain HTTP)"}
    status, run = http(
        "POST",
        f"{live_stack.airflow_url}/api/v2/dags/{DAG_ID}/dagRuns",
        {"logical_date": None, "conf": conf},
        token=token,
    )
    assert status == 200, run
    assert run["state"] == "queued"
    assert run["conf"] == conf
    assert run["logical_date"] is None
    assert run["triggered_by"] == "rest_api"

    began = time.monotonic()
    live_stack.wait_for_dag_run(DAG_ID, run["dag_run_id"], RUN_DEADLINE)
    print(f"\n{DAG_ID} run {run['dag_run_id']} (plain HTTP) succeeded in {time.monotonic() - began:.1f} s")

    register = live_stack.xcom(DAG_ID, run["dag_run_id"], "register")
    champion_before = client_run["register"]["version"]
    assert register["created"] is True
    assert int(register["version"]) > int(champion_before)
    assert register["promoted"] is False  # the same data and params: a tie keeps the champion
    assert register["previous_champion"] == champion_before
    client = MlflowClient(tracking_uri=mlflow_tracking)
    assert client.get_model_version_by_alias(MODEL, "champion").version == champion_before
    challenger = client.get_model_version_by_alias(MODEL, "challenger")
    assert challenger.version == register["version"]
    assert challenger.tags["mlops.reason"] == conf["reason"]
    assert challenger.tags["mlops.gate.decision"] == "rejected"


@pytest.mark.parametrize(
    ("conf", "param"),
    [
        ({"window_days": 1}, "window_days"),
        ({"reason": ""}, "reason"),
        ({"report_uri": "http://example.com/report.json"}, "report_uri"),
        ({"grid": "x"}, "grid"),
        ({"grid": {"C": []}}, "grid"),
        ({"end_date": "2026-13-45"}, "end_date"),
        ({"force_promote": "yes"}, "force_promote"),
    ],
)
def test_invalid_conf_is_refused_and_nothing_runs(live_stack: LiveStack, conf: dict, param: str) -> None:
    from airflow_client.client import ApiClient, Configuration, DagRunApi, TriggerDAGRunPostBody
    from airflow_client.client.exceptions import BadRequestException

    live_stack.wait_for_dag(DAG_ID)
    before = runs_count(live_stack)

    status, body = live_stack.request(
        "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {**CONF, **conf}}
    )
    assert status == 400, body
    assert f"Invalid input for param {param}" in body["detail"]

    config = Configuration(host=live_stack.airflow_url, access_token=live_stack.token())
    with ApiClient(config) as api, pytest.raises(BadRequestException) as refused:
        DagRunApi(api).trigger_dag_run(DAG_ID, TriggerDAGRunPostBody(logical_date=None, conf=conf))
    assert refused.value.status == 400
    assert f"Invalid input for param {param}" in refused.value.body

    assert runs_count(live_stack) == before


def test_dag_declares_its_params_and_no_model_param(live_stack: LiveStack) -> None:
    """The generated DAG is the model's own: its Params are the run's settings, none names the model."""
    live_stack.wait_for_dag(DAG_ID)
    details = live_stack.api("GET", f"/api/v2/dags/{DAG_ID}/details")
    assert set(details["params"]) == PARAMS
    assert MODEL in {tag["name"] for tag in details["tags"]}


def test_unknown_conf_key_fails_the_first_task_without_retry(
    live_stack: LiveStack, training_data: dict[str, str]
) -> None:
    """Airflow accepts any conf key; the run refuses one that is not a Param before any work.

    ``model`` was a Param of the hand-written DAG (the generated one is per model); ``windows_days``
    is a typo of ``window_days``: both are named, the typo with the key it probably meant.
    """
    conf = {"model": MODEL, "windows_days": 3, "reason": "REST API test (unknown keys)"}
    run = live_stack.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": conf})
    assert run["conf"] == conf
    run_id = run["dag_run_id"]

    ended = live_stack.wait_for_dag_run(DAG_ID, run_id, RUN_DEADLINE, expect="failed")
    assert ended["state"] == "failed"
    assert live_stack.task_states(DAG_ID, run_id) == {
        "prepare": "failed",
        "train": "upstream_failed",
        "evaluate": "upstream_failed",
        "register": "upstream_failed",
    }
    (prepare,) = [ti for ti in live_stack.task_instances(DAG_ID, run_id) if ti["task_id"] == "prepare"]
    assert prepare["try_number"] == 1  # InvalidConfigurationError: not retried (the DAG has retries)

    def failure_logged() -> str:
        logs = [log for log in live_stack.task_logs(DAG_ID, run_id) if "task_id=prepare" in str(log)]
        text = "".join(log.read_text(errors="replace") for log in logs)
        return text if "InvalidConfigurationError" in text else ""

    text = wait_for("the failure in the prepare task's log", failure_logged, 30)
    assert "unknown key 'model' in the run's conf" in text
    assert "unknown key 'windows_days' in the run's conf (did you mean 'window_days'?)" in text
    assert "Trigger the DAG again with the Params it declares." in text


def test_api_refuses_requests_without_a_valid_token(live_stack: LiveStack) -> None:
    import jwt
    from airflow_client.client import ApiClient, Configuration, DAGApi
    from airflow_client.client.exceptions import UnauthorizedException

    url = f"{live_stack.airflow_url}/api/v2/dags"
    real = live_stack.token()
    header = jwt.get_unverified_header(real)
    claims = jwt.decode(real, options={"verify_signature": False})
    now = int(time.time())

    def signed(secret: str, **changes: int) -> str:
        return jwt.encode({**claims, **changes}, secret, algorithm=header["alg"], headers=header)

    # Control: the stack's own secret and claims make a token the API accepts ...
    assert http("GET", url, token=signed(live_stack.jwt_secret))[0] == 200
    # ... so the same token expired an hour ago is refused for its expiry alone.
    expired = signed(live_stack.jwt_secret, iat=now - 7200, nbf=now - 7200, exp=now - 3600)
    status, body = http("GET", url, token=expired)
    assert (status, body) == (401, {"detail": "Token Expired"})

    assert http("GET", url)[0] == 401  # no token at all
    for token in ("garbage", signed("x" * 86), jwt.encode(claims, None, algorithm="none")):
        status, body = http("GET", url, token=token)
        assert status in (401, 403), (token, status, body)
        assert "dags" not in body

    # Writes too: an unauthenticated trigger is refused and creates no run.
    before = runs_count(live_stack)
    status, _ = http("POST", f"{url}/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {}})
    assert status == 401
    assert runs_count(live_stack) == before

    with ApiClient(Configuration(host=live_stack.airflow_url)) as api, pytest.raises(UnauthorizedException):
        DAGApi(api).get_dags()

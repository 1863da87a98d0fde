"""The local stack: an MLflow tracking server and Airflow on SQLite, loopback only, and the demo on it.

``scripts/run-stack`` runs it (``python scripts/mlops_stack ...``); see :mod:`mlops_stack.cli` for the
commands. Modules, from the bottom up (each imports only those listed before it):

- ``errors``: the one-line error shown to the user;
- ``processes``: start in a session of its own, signal and stop process groups, pid-reuse check;
- ``logs``: server logs opened for appending, rotated when large, and their tails;
- ``rest``: one small HTTP/JSON client and the Airflow REST client (token, calls, errors);
- ``ports``, ``health``: the loopback ports, and HTTP probes of MLflow and Airflow;
- ``paths``, ``credentials``, ``environment``: the state directory, the generated secrets, the servers'
  environment (and ``airflow_local_settings.py``, copied into AIRFLOW_HOME/config, never imported);
- ``restart``, ``state``, ``progress``, ``servers``: when to restart a server that exited, stack.json,
  what is printed, what each server runs;
- ``stack``: the ``up`` command (start, supervise, stop);
- ``plan``, ``runs``, ``mlflow_rest``, ``launcher``, ``summary``, ``demo``: the demo (its days, Airflow's
  DAG runs and MLflow's registry over REST, the detached stack, the summary, the phases);
- ``cli``: argument parsing and the commands.

Standard library only (the demo also imports ``mlops_provider.pipelines.ids``,
``mlops_provider.core.registry_names`` and the example-data generator): this runs before anything
heavy is imported, with the project venv's python. The tests
import ``processes`` and ``rest`` too (``tests/support``).
"""

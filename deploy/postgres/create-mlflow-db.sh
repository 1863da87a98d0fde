#!/bin/bash
# Runs once, when the Postgres data volume is initialised (docker-entrypoint-initdb.d): creates the
# MLflow backend store next to Airflow's metadata database, owned by its own user. The password is
# the one the mlops-secrets job wrote into the secrets volume.
set -euo pipefail

password="$(cat /opt/mlops-secrets/mlflow_db_password)"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=mlflow_password="$password" <<'SQL'
CREATE USER mlflow WITH PASSWORD :'mlflow_password';
CREATE DATABASE mlflow OWNER mlflow;
SQL

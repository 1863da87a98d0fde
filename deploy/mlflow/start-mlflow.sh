#!/bin/sh
# Start `mlflow server` with the secrets of the secrets volume: the PostgreSQL backend store URI and
# the MinIO credentials for the artifact store. The remaining options come as arguments (the compose
# service's `command`).
set -eu

secrets=/opt/mlops-secrets
AWS_ACCESS_KEY_ID="${MINIO_ROOT_USER:-mlops}"
AWS_SECRET_ACCESS_KEY="$(cat "$secrets/minio_root_password")"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export MLFLOW_S3_ENDPOINT_URL="${MLFLOW_S3_ENDPOINT_URL:-http://minio:9000}"

exec mlflow server --backend-store-uri "$(cat "$secrets/mlflow_backend_store_uri")" "$@"

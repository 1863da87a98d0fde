FROM astrocrpublic.azurecr.io/runtime:3.3-2

# Astro Runtime 3.3 (Apache Airflow 3.3) on the Runtime's default Python; to match the Python 3.11
# of uv.lock, use the `3.3-2-python-3.11` variant of the same tag.
#
# The image's ONBUILD steps have already run at this point: packages.txt -> apt,
# requirements.txt -> pip, and the whole build context (minus .dockerignore) copied to
# $AIRFLOW_HOME (/usr/local/airflow) as user `astro`.
#
# Install the provider from this repository (not from PyPI), so the image runs the DAGs with the
# provider code of the same commit. Airflow itself stays at the version the Runtime ships: the
# installed apache-airflow distributions are pinned as constraints while the provider and its
# dependencies (mlflow, great-expectations, scikit-learn, ...) are resolved around them, plus the
# same `mlflow<3.18` constraint as [tool.uv] in pyproject.toml.
COPY --chown=astro:0 pyproject.toml README.md /tmp/airflow-provider-mlops/
COPY --chown=astro:0 src/ /tmp/airflow-provider-mlops/src/
RUN pip list --format=freeze | grep -iE '^apache-airflow(-core|-task-sdk)?==' > /tmp/constraints.txt \
    && echo 'mlflow<3.18' >> /tmp/constraints.txt \
    && pip install --no-cache-dir --constraint /tmp/constraints.txt /tmp/airflow-provider-mlops \
    && rm -rf /tmp/airflow-provider-mlops /tmp/constraints.txt

# Mount points of the named volumes in docker-compose.yaml, created here as `astro` so that a fresh
# named volume inherits that ownership and the Airflow processes can write to it.
RUN mkdir -p "${AIRFLOW_HOME:-/usr/local/airflow}/mlops-data" "${AIRFLOW_HOME:-/usr/local/airflow}/auth"

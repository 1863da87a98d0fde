# One image for `astro dev start` and for docker-compose.yaml: Astro Runtime 3.3 (Apache Airflow 3.3)
# on Python 3.11, the Python of uv.lock, with this repository's provider installed at the versions of
# uv.lock.
FROM astrocrpublic.azurecr.io/runtime:3.3-2-python-3.11

# The image's ONBUILD steps have already run at this point: packages.txt -> apt,
# requirements.txt -> pip, and the whole build context (minus .dockerignore) copied to
# $AIRFLOW_HOME (/usr/local/airflow) as user `astro`.
#
# The provider comes from this repository (not from PyPI), so the image runs the DAGs with the
# provider code of the same commit, with its `s3` extra (amazon provider + s3fs, for s3:// data roots).
# Every dependency is pinned by constraints.txt, which is `uv export` of uv.lock (a unit test keeps
# the two in sync): the image gets the versions the test suite ran with, not whatever is newest on
# build day. The Runtime's own Airflow distributions stay as shipped: their lines are replaced by
# the installed versions, so a Runtime whose Airflow differs from uv.lock's makes pip fail loudly
# on the first conflicting pin instead of silently replacing Airflow.
COPY --chown=astro:0 pyproject.toml README.md LICENSE constraints.txt /tmp/airflow-provider-mlops/
COPY --chown=astro:0 src/ /tmp/airflow-provider-mlops/src/
RUN cd /tmp/airflow-provider-mlops \
    && grep -viE '^apache-airflow(-core|-task-sdk)?==' constraints.txt > /tmp/constraints.txt \
    && pip list --format=freeze | grep -iE '^apache-airflow(-core|-task-sdk)?==' >> /tmp/constraints.txt \
    && pip install --no-cache-dir --constraint /tmp/constraints.txt "/tmp/airflow-provider-mlops[s3]" \
    && rm -rf /tmp/airflow-provider-mlops /tmp/constraints.txt


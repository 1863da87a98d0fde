"""Pure-Python core: every ML and data decision, with no Airflow import."""

"""Runners that execute a Plan on local or job-cluster Spark (the pipeline runners are in `pipelines.ldp`)."""

"""The customer records as a change feed: AUTO CDC orders them by `updated_at`, so it is typed first."""
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def customers_history(customers_bronze: DataFrame) -> DataFrame:
    return customers_bronze.withColumn("updated_at", F.to_timestamp("updated_at"))

"""Customers typed and cleaned, one row per customer (the latest update wins)."""
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def customers_silver(customers_bronze: DataFrame) -> DataFrame:
    latest_first = Window.partitionBy("customer_id").orderBy(F.col("updated_at").desc())
    return (
        customers_bronze
        .select(
            F.trim("customer_id").alias("customer_id"),
            F.trim("name").alias("name"),
            F.lower(F.trim("email")).alias("email"),
            F.upper(F.trim("country")).alias("country"),
            F.to_date("signup_date").alias("signup_date"),
            F.to_timestamp("updated_at").alias("updated_at"),
        )
        .withColumn("_rank", F.row_number().over(latest_first))
        .where("_rank = 1")
        .drop("_rank")
    )

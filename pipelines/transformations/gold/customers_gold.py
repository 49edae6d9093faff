"""Customer counts per country."""
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def customers_gold(customers_silver: DataFrame) -> DataFrame:
    return (
        customers_silver
        .where(F.col("customer_id").isNotNull())
        .groupBy("country")
        .agg(F.count("*").alias("customers"), F.min("signup_date").alias("first_signup"))
    )

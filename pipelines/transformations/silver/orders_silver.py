"""Orders typed and de-duplicated, enriched with the customer's country."""
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def orders_silver(orders_bronze: DataFrame, customers_silver: DataFrame) -> DataFrame:
    orders = (
        orders_bronze
        .select(
            "order_id",
            "customer_id",
            F.col("amount").cast("decimal(12,2)").alias("amount"),
            F.upper("currency").alias("currency"),
            F.to_timestamp("order_ts").alias("order_ts"),
            F.lower("status").alias("status"),
            F.to_date(F.regexp_extract("_source_file", r"(\d{4}-\d{2}-\d{2})", 1)).alias("landed_on"),
        )
        .dropDuplicates(["order_id"])  # the duplicates in the landing files are identical rows
    )
    countries = customers_silver.select("customer_id", "country")
    return (
        orders.join(countries, "customer_id", "left")
        .withColumn("is_late", F.to_date("order_ts") < F.date_sub("landed_on", 1))
    )

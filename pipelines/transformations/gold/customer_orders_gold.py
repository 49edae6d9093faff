"""Revenue per customer: every customer, with their paid and shipped orders."""
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def customer_orders_gold(customers_silver: DataFrame, orders_silver: DataFrame) -> DataFrame:
    counted = (orders_silver.where(F.col("status").isin("paid", "shipped") & (F.col("amount") > 0))
               .select("customer_id", "order_id", "amount", "order_ts"))
    return (
        customers_silver.where(F.col("customer_id").isNotNull())
        .join(counted, "customer_id", "left")
        .groupBy("customer_id", "name", "country")
        .agg(
            F.count("order_id").alias("orders"),
            F.coalesce(F.sum("amount"), F.lit(0).cast("decimal(22,2)")).alias("revenue"),
            F.max("order_ts").alias("last_order_ts"),
        )
    )

"""Order status events as the order service publishes them, with each event's place in the topic."""
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def order_events_bronze(source: DataFrame) -> DataFrame:
    return source.withColumn("_offset", F.col("_kafka.offset"))

"""Raw orders as they land, with the file each row came from."""
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def orders_bronze(source: DataFrame) -> DataFrame:
    return source.withColumn("_source_file", F.col("_metadata.file_name"))

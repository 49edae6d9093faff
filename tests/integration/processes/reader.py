"""A process polling a table through Spark Connect (another process's catalog) until told to stop:
one JSON line per read with the row count, distinct versions and a checksum.

    python reader.py PORT TABLE STOP_FILE"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

port, table, stop = sys.argv[1], sys.argv[2], Path(sys.argv[3])
spark = SparkSession.builder.remote(f"sc://127.0.0.1:{port}").getOrCreate()
while not stop.exists():
    spark.catalog.refreshTable(table)  # file listings are cached per session
    row = spark.table(table).agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("v").alias("versions"),
                                 F.min("v").alias("v"), F.sum("id").alias("checksum")).first()
    print(json.dumps(row.asDict()), flush=True)
spark.stop()

"""The `type: kafka` sink's writer: the table's rows as JSON messages, sent by Spark's Kafka connector
with an idempotent producer. Kafka has no transaction a batch write could roll back: a failed write may
have sent part of the rows, and the rerun sends them all again (at least once, as the spec says)."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.catalog.sinks import LakeflowSink, SinkWriter, register_writer
from pipelines.catalog.secrets import credential
from pipelines.catalog.sources import reachable_broker
from pipelines.core.kafka_sink import KafkaSink

TABLE_HEADER, RUN_HEADER = "ldp_table", "ldp_run_id"


class KafkaWriter(SinkWriter[KafkaSink]):
    def write(self, df: DataFrame, sink: KafkaSink, table: str) -> int | None:
        reachable_broker(sink.servers, key="sinks.bootstrap_servers")
        jaas = credential(sink.jaas_config, sink.jaas_config_env, f"the credentials of {sink.bootstrap_servers} "
                          "(kafka.sasl.jaas.config)", "sinks.jaas_config", self.run.base_dir)
        writer = df.select(*self._message(df, sink, table)).write.format("kafka").options(**sink.writer_options)
        if jaas is not None:
            writer = writer.option("kafka.sasl.jaas.config", jaas)
        writer.save()
        return df.count()  # a stored table's count, from Delta's statistics (an Observation on a Kafka write
        # is never reported: measured, `Observation.get` waited forever)

    def lakeflow(self, sink: KafkaSink, table: str) -> LakeflowSink:
        """`dp.create_sink(format="kafka")` with the writer's options, fed the same messages."""
        jaas = credential(sink.jaas_config, sink.jaas_config_env, f"the credentials of {sink.bootstrap_servers} "
                          "(kafka.sasl.jaas.config)", "sinks.jaas_config", self.run.base_dir)
        options = {**sink.writer_options, **({"kafka.sasl.jaas.config": jaas} if jaas is not None else {})}
        return LakeflowSink(format="kafka", options=options,
                            rows=lambda df: df.select(*self._message(df, sink, table)))

    def _message(self, df: DataFrame, sink: KafkaSink, table: str) -> list:
        value = F.to_json(F.struct(F.col("*"))).alias("value")  # every column, without analyzing `df`
        headers = F.array(*[F.struct(F.lit(name).alias("key"), F.lit(text).cast("binary").alias("value"))
                            for name, text in ((TABLE_HEADER, table), (RUN_HEADER, self.run.run_id))])
        key = [F.expr(sink.key).cast("string").alias("key")] if sink.key else []
        return [*key, value, headers.alias("headers")]


register_writer("kafka", KafkaWriter)

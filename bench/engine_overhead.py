"""How much does the engine cost over the same PySpark written by hand?

The example project's six transformations (config.yml, pipelines/transformations/) on synthetic
landing data of the example's shape (`--orders` json order events, `--customers` csv customers,
deterministic), run twice in ONE process on ONE local session (local[2]):
  engine  load_project on a copy of config.yml pointing at the generated data, every check removed
          (no expectations, monitors or sinks; files sources keep their schema but read with
          `mode: PERMISSIVE`, Spark's default, which leaves out the implicit malformed-record check),
          then SparkRunner(...).run() with a TableStore
  hand    the same functions called directly in dependency order, each result written with
          df.write.format("delta").mode("overwrite")[.partitionBy(...)].saveAsTable(...)
Sides alternate (engine, hand, hand, engine, ...) after one warm-up each. ratio = engine median /
hand median; goal <= 1.10. `--profile` lists the Spark jobs of one more run per side (from the
session's status store: what each side asks Spark to do, and how long each job took).
Last stdout line: one JSON object.
"""
from __future__ import annotations

import argparse
import importlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from pipelines.catalog.session import local_session  # noqa: E402
from pipelines.catalog.storage import TableStore  # noqa: E402
from pipelines.engine.project import load_project  # noqa: E402
from pipelines.runners.spark import SparkRunner  # noqa: E402

ENGINE_SCHEMA, HAND_SCHEMA = "engine_side", "hand_side"
DAYS = ("2026-11-01", "2026-11-02")
KEPT = ("name", "layer", "tags", "depends_on", "comment", "partition_cols", "table_properties", "source")


def _pick(key, n: int, salt: int):
    """A deterministic pseudo-random int in [0, n) from `key`."""
    return F.pmod(F.xxhash64(key, F.lit(salt)), F.lit(n))


def _land(df, fmt: str, scratch: Path, folder: Path, stem: str, **options) -> None:
    """Write `df` as `fmt` files named {stem}_{i}.{fmt} into `folder` (the date in the name is what the
    bronze transformations extract as `landed_on`)."""
    getattr(df.write.mode("overwrite").options(**options), fmt)(str(scratch))
    folder.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(sorted(scratch.glob(f"part-*.{fmt}"))):
        part.rename(folder / f"{stem}_{i}.{fmt}")
    shutil.rmtree(scratch)


def make_landing(spark: SparkSession, root: Path, orders: int, customers: int) -> None:
    """customers/*.csv: every customer on day 1, 10% updated on day 2 (later updated_at), ~1% without
    email, some malformed emails and untrimmed/lower-case countries. orders/*.json: ~1% of lines are
    identical duplicates, ~1% name an unknown customer, ~0.5% negative and ~0.5% null amounts,
    statuses paid/shipped/cancelled/refunded, ~2% landed late."""
    countries = F.array(*[F.lit(c) for c in ("GB", "US", "NL", "DE", "FR", " gb", "us ", "ES")])
    cid = F.format_string("C%07d", F.col("id"))
    for day_no, day in enumerate(DAYS):
        ids = spark.range(0, customers, numPartitions=2)
        if day_no:
            ids = ids.where(_pick("id", 10, 1) == 0)
        email = (F.when(_pick("id", 100, 2) == 0, F.lit(None))
                 .when(_pick("id", 100, 3) == 0, F.format_string("user%d@example", F.col("id")))
                 .otherwise(F.format_string("User%d@Example.com", F.col("id") + day_no)))
        rows = ids.select(
            cid.alias("customer_id"), F.format_string("Customer %d", F.col("id")).alias("name"),
            email.alias("email"), F.element_at(countries, (_pick("id", 8, 4) + 1).cast("int")).alias("country"),
            F.date_format(F.date_add(F.lit("2025-01-01").cast("date"), _pick("id", 600, 5).cast("int")),
                          "yyyy-MM-dd").alias("signup_date"),
            F.lit(f"{day}T08:00:00").alias("updated_at"))
        _land(rows, "csv", root / "_scratch", root / "customers", f"customers_{day}", header=True)
    half = orders // 2
    for day_no, day in enumerate(DAYS):
        ids = spark.range(day_no * half, orders if day_no else half, numPartitions=2)
        key = F.col("id") - F.when(F.col("id") % 100 == 99, 1).otherwise(0)  # every 100th line repeats the last
        customer = F.when(_pick(key, 100, 6) == 0, F.format_string("C9%06d", _pick(key, 1000, 7))).otherwise(
            F.format_string("C%07d", _pick(key, customers, 8)))
        amount = (F.when(_pick(key, 200, 9) == 0, F.lit(None))
                  .when(_pick(key, 200, 10) == 0, -F.lit(5.0))
                  .otherwise(_pick(key, 50_000, 11) / 100.0))
        late = F.when(_pick(key, 50, 12) == 0, 3 * 86_400).otherwise(0)
        ts = F.timestamp_seconds(F.unix_timestamp(F.lit(f"{day} 00:00:00")) + _pick(key, 86_400, 13) - late)
        statuses = F.array(*[F.lit(s) for s in ("paid", "paid", "shipped", "PAID", "cancelled", "refunded")])
        currencies = F.array(*[F.lit(c) for c in ("EUR", "USD", "GBP", "eur")])
        rows = ids.select(
            F.format_string("O%08d", key).alias("order_id"), customer.alias("customer_id"),
            amount.alias("amount"), F.element_at(currencies, (_pick(key, 4, 14) + 1).cast("int")).alias("currency"),
            F.date_format(ts, "yyyy-MM-dd'T'HH:mm:ss").alias("order_ts"),
            F.element_at(statuses, (_pick(key, 6, 15) + 1).cast("int")).alias("status"))
        _land(rows, "json", root / "_scratch", root / "orders", f"orders_{day}")


def bench_config(tmp: Path, landing: Path) -> Path:
    """config.yml of the example with every check, monitor and sink removed, reading `landing`."""
    example = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    tables = []
    for table in example["tables"]:
        kept = {k: v for k, v in table.items() if k in KEPT}
        if "source" in kept:  # an explicit mode (Spark's default) is the user's choice: no implicit check
            source = dict(kept["source"])
            source["path"] = str(landing / Path(source["path"]).name)
            source["options"] = {**source.get("options", {}), "mode": "PERMISSIVE"}
            kept["source"] = source
        tables.append(kept)
    pipeline = {**example["pipeline"], "schema": ENGINE_SCHEMA}
    path = tmp / "project" / "config.yml"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"pipeline": pipeline, "tables": tables}, indent=1), encoding="utf-8")  # JSON is YAML
    return path


class Sides:
    def __init__(self, spark: SparkSession, config: Path, state: Path):
        self.spark, self.config, self.state = spark, config, state
        project = load_project(config, log_warnings=False)
        checked = [t.name for t in project.config.tables if t.has_expectations]
        assert not checked, f"tables with checks (explicit or implicit): {checked}"
        self.tables = [t.config for t in project.plan.tables]  # dependency order
        self.functions = {t.name: getattr(importlib.import_module(
            f"{project.config.pipeline.transformations}.{t.layer}.{t.name}"), t.name) for t in self.tables}
        self.base_dir = project.config.base_dir
        self.engine_rows: dict[str, int] = {}
        self.engine_tables: dict[str, float] = {}
        self.hand_tables: dict[str, float] = {}
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {HAND_SCHEMA}")

    def engine(self) -> None:
        project = load_project(self.config, log_warnings=False)
        store = TableStore(self.spark, project.plan.pipeline, self.state)
        result = SparkRunner(self.spark, project.plan, project.functions, store).run()
        failed = {t.name: t.error for t in result.tables if not t.succeeded}
        assert not failed, f"engine run failed: {failed}"
        self.engine_rows = {t.name: t.rows_written for t in result.tables}
        self.engine_tables = {t.name: t.seconds for t in result.tables}

    def hand(self) -> None:
        for table in self.tables:
            started = time.perf_counter()
            inputs = {dep: self.spark.table(f"{HAND_SCHEMA}.{dep}") for dep in table.depends_on}
            if table.source is not None:
                source = table.source
                inputs["source"] = (self.spark.read.format(source.format).options(**source.options)
                                    .schema(source.schema_ddl).load(source.resolved_path(self.base_dir)))
            df = self.functions[table.name](**inputs)
            writer = df.write.format("delta").mode("overwrite")
            if table.partition_cols:
                writer = writer.partitionBy(*table.partition_cols)
            writer.saveAsTable(f"{HAND_SCHEMA}.{table.name}")
            self.hand_tables[table.name] = round(time.perf_counter() - started, 3)

    def same_rows(self) -> dict[str, int]:
        """Rows per table; both sides wrote the same rows (counted, and compared by checksum)."""
        rows = {}
        for table in self.tables:
            engine, hand = (self.spark.table(f"{s}.{table.name}") for s in (ENGINE_SCHEMA, HAND_SCHEMA))
            count = hand.count()
            assert count == self.engine_rows[table.name] == engine.count(), table.name
            digest = [F.sum(F.hash(*[F.col(f"`{c}`") for c in hand.columns]).cast("long")).alias("h")]
            assert engine.select(*hand.columns).agg(*digest).first()[0] == hand.agg(*digest).first()[0], table.name
            rows[table.name] = count
        return rows


def jobs(spark: SparkSession) -> list[tuple[int, str, float]]:
    """Every job the session's status store still holds: (id, description or call site, seconds)."""
    store = spark.sparkContext._jsc.sc().statusStore()
    found = store.jobsList(None)
    out = []
    for i in range(found.size()):
        job = found.apply(i)
        label = job.description().getOrElse(None) if job.description().isDefined() else job.name()
        submitted, completed = job.submissionTime(), job.completionTime()
        seconds = ((completed.get().getTime() - submitted.get().getTime()) / 1000
                   if submitted.isDefined() and completed.isDefined() else float("nan"))
        out.append((job.jobId(), " ".join(str(label).split())[:110], seconds))
    return out


def profile(spark: SparkSession, name: str, action) -> dict[str, object]:
    """Run `action` once and list the Spark jobs it started, grouped by what they are."""
    before = {j[0] for j in jobs(spark)}
    seconds = timed(action)
    new = sorted((j for j in jobs(spark) if j[0] not in before), key=lambda j: j[0])
    groups: Counter[str] = Counter()
    spent: Counter[str] = Counter()
    for _, label, took in new:
        groups[label] += 1
        spent[label] += took
    print(f"\n{name}: {len(new)} Spark jobs in {seconds:.2f}s (job seconds overlap when tables run in parallel)")
    for label, n in sorted(groups.items(), key=lambda kv: -spent[kv[0]]):
        print(f"  {n:>3} x {spent[label]:6.2f}s  {label}")
    return {"jobs": len(new), "job_seconds": round(sum(spent.values()), 2)}


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="list each side's Spark jobs once more")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="engine_overhead_"))
    try:
        spark = local_session(tmp / "state", app_name="engine_overhead", master="local[2]")
        started = time.perf_counter()
        make_landing(spark, tmp / "landing", args.orders, args.customers)
        print(f"landing data: {time.perf_counter() - started:.1f}s", flush=True)
        sides = Sides(spark, bench_config(tmp, tmp / "landing"), tmp / "state")
        actions = {"engine": sides.engine, "hand": sides.hand}
        for name, action in actions.items():  # warm up: JIT, file caches, imports, first Delta versions
            print(f"warm-up {name}: {timed(action):.2f}s", flush=True)
        times: dict[str, list[float]] = {name: [] for name in actions}
        for round_no in range(args.rounds):
            order = list(actions) if round_no % 2 == 0 else list(actions)[::-1]  # engine, hand, hand, engine, ...
            for name in order:
                times[name].append(timed(actions[name]))
            print(f"round {round_no + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in actions), flush=True)
        rows = sides.same_rows()
        print("per table, last round (engine includes its bookkeeping; tables run in parallel):")
        for table in sides.tables:
            print(f"  {table.name:>22}: engine {sides.engine_tables[table.name]:6.2f}s"
                  f"  hand {sides.hand_tables[table.name]:6.2f}s  rows {rows[table.name]:,}")
        jobs_seen = {name: profile(spark, name, action) for name, action in actions.items()} if args.profile else None
        stats = {name: {"min": round(min(v), 2), "median": round(statistics.median(v), 2),
                        "runs": [round(t, 2) for t in v]} for name, v in times.items()}
        ratio = statistics.median(times["engine"]) / statistics.median(times["hand"])
        summary = {"bench": "engine_overhead", "ratio": round(ratio, 3),
                   "min_ratio": round(min(times["engine"]) / min(times["hand"]), 3),
                   "engine_s": stats["engine"], "hand_s": stats["hand"], "rows": rows,
                   "landing": {"orders": args.orders, "customers": args.customers},
                   "goal": "ratio <= 1.10", "ok": ratio <= 1.10}
        if jobs_seen:
            summary["spark_jobs"] = jobs_seen
        spark.stop()
        print(json.dumps(summary))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The example's transformation functions, unit-tested with chispa and the shipped `spark` fixture."""
from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality

from pipelines.transformations.gold.customers_gold import customers_gold
from pipelines.transformations.silver.customers_silver import customers_silver
from pipelines.transformations.silver.orders_silver import orders_silver

BRONZE = "customer_id string, name string, email string, country string, signup_date string, updated_at string"


def test_customers_silver_keeps_the_latest_update_and_cleans_values(spark):
    bronze = spark.createDataFrame([
        ("C1", " Ada ", "ADA@Example.com", "gb", "2026-01-05", "2026-11-01T08:00:00"),
        ("C1", "Ada", "ada.new@example.com", "GB", "2026-01-05", "2026-11-02T08:00:00"),
        ("C2", "Bob", None, "us", "2026-02-01", "2026-11-01T08:00:00"),
    ], BRONZE)
    expected = spark.createDataFrame([
        ("C1", "Ada", "ada.new@example.com", "GB", dt.date(2026, 1, 5), dt.datetime(2026, 11, 2, 8)),
        ("C2", "Bob", None, "US", dt.date(2026, 2, 1), dt.datetime(2026, 11, 1, 8)),
    ], "customer_id string, name string, email string, country string, signup_date date, updated_at timestamp")
    assert_df_equality(customers_silver(bronze), expected, ignore_row_order=True, ignore_nullable=True)


def test_orders_silver_dedupes_joins_country_and_flags_late_records(spark):
    orders = spark.createDataFrame([
        ("O1", "C1", 10.0, "eur", "2026-11-01T09:00:00", "PAID", "orders_2026-11-01.json"),
        ("O1", "C1", 10.0, "eur", "2026-11-01T09:00:00", "PAID", "orders_2026-11-01.json"),
        ("O2", "C9", 5.0, "usd", "2026-10-20T09:00:00", "paid", "orders_2026-11-02.json"),
    ], "order_id string, customer_id string, amount double, currency string, order_ts string, "
       "status string, _source_file string")
    customers = spark.createDataFrame([("C1", "GB")], "customer_id string, country string")
    result = {r.order_id: r for r in orders_silver(orders, customers).collect()}
    assert set(result) == {"O1", "O2"}
    assert result["O1"].country == "GB" and result["O1"].currency == "EUR" and not result["O1"].is_late
    assert result["O2"].country is None and result["O2"].is_late


def test_customers_gold_counts_per_country_without_null_ids(spark):
    silver = spark.createDataFrame([("C1", "GB", dt.date(2026, 1, 1)), ("C2", "GB", dt.date(2026, 2, 1)),
                                    (None, "FR", dt.date(2026, 3, 1))],
                                   "customer_id string, country string, signup_date date")
    expected = spark.createDataFrame([("GB", 2, dt.date(2026, 1, 1))],
                                     "country string, customers long, first_signup date")
    assert_df_equality(customers_gold(silver), expected, ignore_nullable=True)


def test_customers_history_keeps_every_version_of_a_customer_by_its_update_time(spark, cdc_target):
    records = spark.createDataFrame([  # as they land, the later update first
        ("C1", "Ada", "ada.new@example.com", "GB", "2026-01-05", "2026-11-02T08:00:00"),
        ("C1", "Ada", "ada@example.com", "GB", "2026-01-05", "2026-11-01T08:00:00"),
        ("C2", "Bob", "bob@example.com", "US", "2026-02-01", "2026-11-01T08:00:00"),
    ], BRONZE)
    history = cdc_target("customers_history", customers_bronze=records)
    assert history.columns[-2:] == ["__START_AT", "__END_AT"]
    versions = sorted((r["customer_id"], r["email"], r["__START_AT"], r["__END_AT"]) for r in history.collect())
    first, second = dt.datetime(2026, 11, 1, 8), dt.datetime(2026, 11, 2, 8)
    assert versions == [("C1", "ada.new@example.com", second, None), ("C1", "ada@example.com", first, second),
                        ("C2", "bob@example.com", first, None)]

"""Model quality of an inference profile, under Databricks' names, on each window's `:table` row.

No extra scan: regression sums ride in the profile's fused aggregation; classification counts each
(label, prediction) pair in its melt + group-by, as one more "column" whose items are the pairs (all
of them kept, not only the top k). The metrics follow scikit-learn's definitions (tested against it):
`accuracy_score`; `precision`, `recall`, `f1_score` as `{one_vs_all: {class: value}, macro, weighted}`
over the classes seen as label or prediction (a class never predicted has precision 0, as
scikit-learn's `zero_division=0`); `mean_squared_error`, `root_mean_squared_error`,
`mean_average_error` (Databricks' name for the mean absolute error), `mean_absolute_percentage_error`
(rows whose label is 0 left out), `r2_score`. Only rows with both a label and a prediction count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

PAIRS = ":label_prediction"  # the melt's pseudo-column of (label, prediction) pairs
_SEPARATOR = "\u0001"
_AVERAGES = T.StructType([T.StructField("one_vs_all", T.MapType(T.StringType(), T.DoubleType())),
                          T.StructField("macro", T.DoubleType()), T.StructField("weighted", T.DoubleType())])
FIELDS = [T.StructField("accuracy_score", T.DoubleType()), T.StructField("precision", _AVERAGES),
          T.StructField("recall", _AVERAGES), T.StructField("f1_score", _AVERAGES),
          T.StructField("mean_squared_error", T.DoubleType()), T.StructField("root_mean_squared_error", T.DoubleType()),
          T.StructField("mean_average_error", T.DoubleType()),
          T.StructField("mean_absolute_percentage_error", T.DoubleType()), T.StructField("r2_score", T.DoubleType())]


@dataclass(frozen=True)
class ModelQuality:
    problem_type: str  # classification | regression
    prediction_col: str
    label_col: str

    @property
    def regression(self) -> bool:
        return self.problem_type == "regression"

    def _pair(self) -> tuple[Column, Column]:
        label, prediction = F.col(f"`{self.label_col}`"), F.col(f"`{self.prediction_col}`")
        both = label.isNotNull() & prediction.isNotNull()
        return F.when(both, label), F.when(both, prediction)

    def aggregates(self) -> list[Column]:
        """Regression: sums over the rows with a label and a prediction, for the fused aggregation."""
        if not self.regression:
            return []
        label, prediction = (c.cast("double") for c in self._pair())
        error = prediction - label
        return [F.count(error).alias("m_n"), F.sum(error * error).alias("m_sse"), F.sum(F.abs(error)).alias("m_sae"),
                F.sum(F.when(label != 0, F.abs(error / label))).alias("m_sape"),
                F.count(F.when(label != 0, error)).alias("m_ape_n"), F.var_pop(label).alias("m_label_var")]

    def pair_cells(self) -> list[Column]:
        """Classification: one melt cell per row, its item the (label, prediction) pair."""
        if self.regression:
            return []
        label, prediction = (c.cast("string") for c in self._pair())
        pair = F.when(label.isNotNull(), F.concat_ws(_SEPARATOR, label, prediction))  # null unless both are set
        return [F.struct(F.lit(PAIRS).alias("column_name"), pair.alias("item"))]

    def metrics(self, stats: dict[str, Any], pairs: list[dict[str, Any]] | None) -> dict[str, Any]:
        """The `:table` row's model-quality columns for one window and slice."""
        return _regression(stats) if self.regression else _classification(pairs or [])


def _regression(stats: dict[str, Any]) -> dict[str, Any]:
    n = int(stats.get("m_n") or 0)
    if not n:
        return {}
    mse = stats["m_sse"] / n
    variance = stats["m_label_var"]
    return {"mean_squared_error": mse, "root_mean_squared_error": math.sqrt(mse),
            "mean_average_error": stats["m_sae"] / n,
            "mean_absolute_percentage_error": stats["m_sape"] / stats["m_ape_n"] if stats["m_ape_n"] else None,
            "r2_score": 1.0 - mse / variance if variance else None}


def _classification(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[tuple[str, str], int] = {}
    for pair in pairs:
        label, _, prediction = pair["item"].partition(_SEPARATOR)
        counts[(label, prediction)] = counts.get((label, prediction), 0) + int(pair["count"])
    total = sum(counts.values())
    if not total:
        return {}
    classes = sorted({c for pair in counts for c in pair})
    support = {c: sum(n for (label, _), n in counts.items() if label == c) for c in classes}
    predicted = {c: sum(n for (_, prediction), n in counts.items() if prediction == c) for c in classes}
    hits = {c: counts.get((c, c), 0) for c in classes}
    precision = {c: hits[c] / predicted[c] if predicted[c] else 0.0 for c in classes}
    recall = {c: hits[c] / support[c] if support[c] else 0.0 for c in classes}
    f1 = {c: 2 * precision[c] * recall[c] / (precision[c] + recall[c]) if precision[c] + recall[c] else 0.0
          for c in classes}

    def averaged(per_class: dict[str, float]) -> dict[str, Any]:
        return {"one_vs_all": per_class, "macro": sum(per_class.values()) / len(classes),
                "weighted": sum(per_class[c] * support[c] for c in classes) / total}

    return {"accuracy_score": sum(hits.values()) / total, "precision": averaged(precision),
            "recall": averaged(recall), "f1_score": averaged(f1)}

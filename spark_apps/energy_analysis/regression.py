"""Linear regression of energy use (kWh per hour, see profiles.py) on temperature and hour of day,
with Spark MLlib, and the metrics row of a run.

Features: ``temperature_c`` as is, and the hour of day **one-hot** (23 indicators, hour 23 the
reference level), not a cyclic sin/cos pair. Why: outdoor temperature has a daily cycle of its
own, so temperature and hour are correlated; an hour encoding that cannot follow the load's real
daily shape (a morning and an evening peak are not one sinusoid) leaves the unexplained part of
that shape to the feature correlated with it, and the temperature coefficient absorbs it (omitted
variable bias). One indicator per hour fits any daily shape and costs 24 coefficients; the
temperature coefficient is then "kWh per hour per °C at the same hour of day".

OLS exactly (``solver="normal"``, no regularisation): a few dozen features, so the normal
equations are cheap, and they give the coefficients' standard errors as well.

The 70/30 split is ``randomSplit`` with a fixed seed: the same input (same rows in the same
partitions) gives the same split, so a rerun of a date reproduces its metrics.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.evaluation import RegressionEvaluator
from pyspark.ml.feature import OneHotEncoder, OneHotEncoderModel, VectorAssembler
from pyspark.ml.regression import LinearRegression
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

LABEL = "kwh_per_hour"
FEATURES = "temperature_c + one-hot hour_of_day (UTC, reference 23)"
SPLIT = (0.7, 0.3)
DEFAULT_SEED = 16
# The fit needs more training rows than coefficients (24 + intercept), and a test split worth
# measuring; below this the run fails rather than publish metrics of a handful of readings.
MIN_ROWS = 100

# The MySQL table's columns (``energy_regression_runs``): the Reports page's
# include/reports/energy.py REGRESSION_RUNS_COLUMNS first (tests/spark_apps/energy_analysis check
# they are all here; the job cannot import include/, which is not in the Spark bundle), then the
# fit itself and what it was fitted on.
METRICS_SCHEMA = T.StructType([
    T.StructField("run_date", T.DateType(), False),
    T.StructField("rmse", T.DoubleType()),
    T.StructField("mae", T.DoubleType()),
    T.StructField("r2", T.DoubleType()),
    T.StructField("train_rows", T.LongType()),
    T.StructField("test_rows", T.LongType()),
    T.StructField("model_uri", T.StringType()),
    T.StructField("finished_at", T.TimestampType()),  # UTC
    T.StructField("temperature_coef", T.DoubleType()),  # kWh per hour per °C
    T.StructField("temperature_coef_stderr", T.DoubleType()),
    T.StructField("intercept", T.DoubleType()),  # at 0 °C in hour 23
    T.StructField("data_from", T.DateType()),  # the event dates fitted on
    T.StructField("data_to", T.DateType()),
    T.StructField("features", T.StringType()),
    T.StructField("split_seed", T.LongType()),
])
METRICS_KEYS = ("run_date",)


def hour_encoder(spark: SparkSession) -> OneHotEncoderModel:
    """One-hot of hour_of_day with a fixed domain 0..23 (hour 23 dropped: the reference level).

    Fitted on the 24 hours themselves, not on the training split: an encoder fitted on the data
    sizes its vector by the largest hour it saw, so a split without hour 23 would encode
    differently (and an unseen hour would fail the test split). Keeping an "invalid" bucket
    instead is worse: with ``dropLast`` that drops the bucket, keeps all 24 indicators beside the
    intercept and makes the normal equations singular.
    """
    hours = spark.range(24).selectExpr("CAST(id AS INT) AS hour_of_day")
    return OneHotEncoder(inputCols=["hour_of_day"], outputCols=["hour_vec"], dropLast=True).fit(hours)


def build_pipeline(spark: SparkSession) -> Pipeline:
    features = VectorAssembler(inputCols=["temperature_c", "hour_vec"], outputCol="features")
    regression = LinearRegression(featuresCol="features", labelCol=LABEL, predictionCol="prediction",
                                  solver="normal", regParam=0.0, elasticNetParam=0.0, standardization=False)
    # A fitted model as a stage: Pipeline.fit passes it through as is.
    return Pipeline(stages=[hour_encoder(spark), features, regression])


@dataclass(frozen=True)
class Fit:
    model: PipelineModel
    rmse: float
    mae: float
    r2: float
    train_rows: int
    test_rows: int
    temperature_coef: float
    temperature_coef_stderr: float | None
    intercept: float
    seed: int


def fit_and_evaluate(prepared: DataFrame, seed: int = DEFAULT_SEED) -> Fit:
    """Fit on 70 % of ``prepared`` (profiles.prepare's rows), measure on the other 30 %."""
    train, test = prepared.select("temperature_c", "hour_of_day", LABEL).randomSplit(list(SPLIT), seed=seed)
    train = train.cache()  # read by the fit's passes and counted
    try:
        train_rows = train.count()
        if train_rows < MIN_ROWS * SPLIT[0]:
            raise ValueError(f"{train_rows} training rows: too few to fit {FEATURES}")
        model = build_pipeline(prepared.sparkSession).fit(train)
    finally:
        train.unpersist()
    predictions = model.transform(test).cache()
    try:
        test_rows = predictions.count()
        if test_rows == 0:
            raise ValueError("the test split is empty")

        def metric(name: str) -> float:
            return float(RegressionEvaluator(labelCol=LABEL, predictionCol="prediction", metricName=name)
                         .evaluate(predictions))

        rmse, mae, r2 = metric("rmse"), metric("mae"), metric("r2")
    finally:
        predictions.unpersist()
    lr = model.stages[-1]
    try:
        stderr = float(lr.summary.coefficientStandardErrors[0])
    except Exception:  # only the normal solver has them (a singular fit may not): the fit stands without
        stderr = None
    return Fit(model, rmse, mae, r2, train_rows, test_rows, float(lr.coefficients[0]), stderr,
               float(lr.intercept), seed)


def metrics_row(run_date: date, fit: Fit, model_uri: str, finished_at: datetime,
                data_from: date | None, data_to: date | None) -> tuple:
    """The run's row of the metrics table, in METRICS_SCHEMA order."""
    return (run_date, fit.rmse, fit.mae, fit.r2, fit.train_rows, fit.test_rows, model_uri, finished_at,
            fit.temperature_coef, fit.temperature_coef_stderr, fit.intercept, data_from, data_to, FEATURES, fit.seed)

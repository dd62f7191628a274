"""The MLlib regression recovers a known temperature slope from generated readings
(kwh_per_hour = base + slope * temperature + hour effect + weekend + noise, temperature with a
daily cycle of its own) and its metrics are those of the noise it was given."""
from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from spark_apps.energy_analysis import profiles, regression
from tests.spark_apps.energy_analysis.helpers import generated, joined_frame

SLOPE = -0.04  # kWh per hour per °C
NOISE = 0.15  # standard deviation of the generated noise, kWh per hour
# Stated tolerance on the slope: 0.004 kWh/h per °C (10 % of it). The standard error of the fit
# on 28 days of 6 households (~2,800 training rows, temperature spread ~3 °C within an hour of
# day) is ~0.0008, so the tolerance is ~4 standard errors: a correct fit passes whatever the seed,
# a fit that models the hour poorly does not (the naive slope below is off by far more).
TOLERANCE = 0.004


@pytest.fixture(scope="module")
def prepared(spark):
    # No weekend effect here: the model has no weekday term, and with 28 days the weekend days'
    # mean temperature differs from the weekdays' by chance, so an unmodelled weekend effect
    # biases the slope of one sample (by ~0.002 with the generator's default 0.15: measured).
    rows = generated(days=28, households=6, slope=SLOPE, noise=NOISE, weekend=0.0, seed=16)
    frame = profiles.prepare(joined_frame(spark, rows)).cache()
    yield frame
    frame.unpersist()


@pytest.fixture(scope="module")
def fit(prepared):
    return regression.fit_and_evaluate(prepared, seed=7)


def test_the_fit_recovers_the_slope(fit):
    assert abs(fit.temperature_coef - SLOPE) < TOLERANCE, fit.temperature_coef
    assert fit.temperature_coef_stderr is not None and 0 < fit.temperature_coef_stderr < TOLERANCE / 3


def test_the_generated_data_would_catch_a_fit_without_the_hour(prepared):
    """Temperature and load share the daily cycle: the slope of kWh on temperature alone is far
    off, so the test above fails for a model that leaves the hour out."""
    naive = prepared.agg((F.covar_samp("temperature_c", "kwh_per_hour") / F.var_samp("temperature_c"))).first()[0]
    assert abs(naive - SLOPE) > 2 * TOLERANCE, naive


def test_metrics_are_the_test_splits_and_match_the_noise(prepared, fit):
    total = prepared.count()
    assert fit.train_rows + fit.test_rows == total
    assert 0.25 < fit.test_rows / total < 0.35  # the 30 % of randomSplit([0.7, 0.3])
    # A correctly specified model leaves the noise: RMSE ~ its sigma, MAE ~ sigma * sqrt(2/pi).
    assert abs(fit.rmse - NOISE) < 0.02, fit.rmse
    assert abs(fit.mae - NOISE * (2 / 3.14159) ** 0.5) < 0.02, fit.mae
    assert 0.7 < fit.r2 < 1.0, fit.r2


def test_a_fixed_seed_reproduces_the_run(prepared, fit):
    again = regression.fit_and_evaluate(prepared, seed=7)
    assert (again.train_rows, again.rmse, again.temperature_coef) == (fit.train_rows, fit.rmse, fit.temperature_coef)
    other = regression.fit_and_evaluate(prepared, seed=8)
    assert other.train_rows != fit.train_rows or other.rmse != fit.rmse


def test_too_few_rows_fail_rather_than_publish(spark):
    frame = profiles.prepare(joined_frame(spark, generated(days=1, households=2)))  # 48 readings
    with pytest.raises(ValueError, match="too few"):
        regression.fit_and_evaluate(frame)


def test_the_hour_encoding_does_not_depend_on_the_hours_of_the_training_split(spark):
    """Readings of hours 0-20 only: the model still has 23 hour indicators and predicts hour 23
    (the reference level) instead of failing on an hour it never saw."""
    rows = [r for r in generated(days=14, households=2, weekend=0.0) if (r[2].hour - 1) % 24 <= 20]
    frame = profiles.prepare(joined_frame(spark, rows))
    assert frame.agg(F.max("hour_of_day")).first()[0] == 20
    fit = regression.fit_and_evaluate(frame)
    assert fit.model.stages[0].categorySizes == [24]
    probe = spark.createDataFrame([(10.0, 23, 0.0)], "temperature_c double, hour_of_day int, kwh_per_hour double")
    assert fit.model.transform(probe).first().prediction == pytest.approx(fit.intercept + 10.0 * fit.temperature_coef)

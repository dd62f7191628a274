"""The CPCB-format generator: deterministic, realistic layouts, known number of bad rows."""
from __future__ import annotations

from include.generators.air_quality import generate
from spark_apps.air_quality.convert import convert


def test_generator_is_deterministic(tmp_path):
    a = generate(tmp_path / "a", rows=900, stations=3, seed=5, bad_share=0.01)
    b = generate(tmp_path / "b", rows=900, stations=3, seed=5, bad_share=0.01)
    assert [f.layout for f in a.files] == ["preamble", "preamble+units", "file-name"]
    for fa, fb in zip(a.files, b.files):
        assert open(fa.path, "rb").read() == open(fb.path, "rb").read()
    assert "PM2.5 (ug/m3)" in open(a.files[1].path).read()


def test_generated_files_convert_with_the_expected_bad_rows(spark, tmp_path):
    gen = generate(tmp_path / "raw", rows=3000, stations=3, seed=11, bad_share=0.01)
    assert (gen.data_rows, gen.bad_rows) == (3000, 30)
    out = tmp_path / "parquet"
    result = convert(spark, (tmp_path / "raw").as_uri(), out.as_uri(), (tmp_path / "q").as_uri(), max_bad_share=0.02)
    assert (result.files, result.good_rows, result.bad_rows) == (3, 2970, 30)
    stations = {r[0] for r in spark.read.parquet(out.as_uri()).select("station").distinct().collect()}
    assert stations == {f.station for f in gen.files}

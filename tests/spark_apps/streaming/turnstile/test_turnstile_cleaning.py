"""The cleaning rules on hand-made readings, every delta computed by hand in the comments."""
from __future__ import annotations

import pytest

from spark_apps.streaming.turnstile import cleaning
from spark_apps.streaming.turnstile.cleaning import Interval, Reading

H = 3600 * 1000  # an hour in ms
T0 = 1434758400000  # 2015-06-20 00:00


def reading(hour: int, entries: int, exits: int, desc: str = "REGULAR", plus_ms: int = 0) -> Reading:
    return Reading(T0 + hour * H + plus_ms, desc, entries, exits, "LEXINGTON AVE", "NQR456", "BMT")


def counted(hour: int, entries: int, exits: int, **dropped) -> Interval:
    return Interval(T0 + hour * H, "LEXINGTON AVE", "NQR456", "BMT", entries, exits, 1, **dropped)


def test_values_zero_padded_with_trailing_spaces_and_beyond_32_bits():
    assert cleaning.parse_counter("0000000042") == 42
    assert cleaning.parse_counter("0005192500   ") == 5192500
    assert cleaning.parse_counter(" 1895614960 ") == 1895614960
    assert cleaning.parse_counter("9999999999") == 9_999_999_999  # > 2^31 and > 2^32
    for bad in ("", "  ", "-5", "12a", "1.5", "９"):  # the last: a full-width digit
        with pytest.raises(ValueError):
            cleaning.parse_counter(bad)
    with pytest.raises(ValueError, match="64 bits"):
        cleaning.parse_counter("9223372036854775808")


def test_the_first_reading_yields_no_delta_and_the_next_ones_their_differences():
    # 5192500 -> 5192550: 50 entries; 1756572 -> 1756580: 8 exits; then 18 and 29.
    readings = [reading(0, 5192500, 1756572), reading(4, 5192550, 1756580), reading(8, 5192568, 1756609)]
    assert cleaning.intervals(readings[:1]) == []
    assert cleaning.intervals(readings) == [counted(4, 50, 8), counted(8, 18, 29)]


def test_a_turnstile_counting_down_gives_the_absolute_difference():
    # 1000 -> 940: |-60| = 60 entries; 500 -> 480: 20 exits.
    assert cleaning.intervals([reading(0, 1000, 500), reading(4, 940, 480)]) == [counted(4, 60, 20)]


def test_a_delta_at_or_above_the_threshold_is_dropped_per_counter_and_counted():
    # entries 100 -> 10100: 10,000 (dropped, "abs < 10000" keeps), exits 0 -> 9999 kept.
    assert cleaning.intervals([reading(0, 100, 0), reading(4, 10_100, 9_999)]) == [
        counted(4, 0, 9_999, entries_dropped=1)]
    # A reset to a small value: 5,000,000 -> 3 entries is 4,999,997 (dropped); exits 200 -> 210: 10.
    assert cleaning.intervals([reading(0, 5_000_000, 200), reading(4, 3, 210)]) == [
        counted(4, 0, 10, entries_dropped=1)]
    # A wrap past 10 digits: 9,999,999,000 -> 500 is a difference of 9,999,998,500 (dropped).
    assert cleaning.intervals([reading(0, 9_999_999_000, 7), reading(4, 500, 9)]) == [
        counted(4, 0, 2, entries_dropped=1)]
    # The threshold is a setting: 150 with a threshold of 100 is dropped.
    assert cleaning.intervals([reading(0, 0, 0), reading(4, 150, 50)], max_delta=100) == [
        counted(4, 0, 50, entries_dropped=1)]


def test_across_a_gap_over_24_hours_both_deltas_are_dropped():
    # 0 -> 24 h is a gap of exactly 24 h: counted (30 and 40); 24 h -> 48 h + 1 s is over: dropped.
    readings = [reading(0, 0, 0), reading(24, 30, 40), reading(48, 90, 100, plus_ms=1000)]
    assert cleaning.intervals(readings) == [
        counted(24, 30, 40),
        Interval(T0 + 48 * H + 1000, "LEXINGTON AVE", "NQR456", "BMT", gap_dropped=1)]


def test_a_recovr_aud_duplicate_of_a_regular_reading_is_dropped_whichever_comes_first():
    regular = [reading(0, 100, 100), reading(4, 150, 120), reading(8, 200, 125)]
    duplicate = reading(4, 153, 121, "RECOVR AUD")  # the recovered audit says 153, the REGULAR 150
    expected = [counted(4, 50, 20), counted(8, 50, 5)]  # 100->150->200, 100->120->125
    for order in ([regular[0], duplicate, *regular[1:]], [*regular, duplicate]):
        assert cleaning.clean(order) == (expected, {"recovr_duplicate": 1, "repeat": 0})
    # A RECOVR AUD reading at a time without a REGULAR one is a reading: 150 -> 170 -> 200.
    alone = [regular[0], regular[1], reading(6, 170, 123, "RECOVR AUD"), regular[2]]
    assert cleaning.clean(alone)[0] == [counted(4, 50, 20), counted(6, 20, 3), counted(8, 30, 2)]
    # The same reading twice (a replayed record) counts once.
    assert cleaning.clean([*regular, regular[1]]) == (expected, {"recovr_duplicate": 0, "repeat": 1})


def test_advance_without_late_readings_emits_each_new_interval_once():
    first = cleaning.advance([], [reading(0, 100, 10), reading(4, 160, 30)], watermark_ms=0)
    assert first.contributions == [counted(4, 60, 20)] and first.late == []
    second = cleaning.advance(first.kept, [reading(8, 200, 35)], watermark_ms=T0 + 1 * H)
    assert second.contributions == [counted(8, 40, 5)]  # 160->200, 30->35
    # State: the readings from the watermark (4 h, 8 h) and the one before it (0 h).
    assert [r.at_ms for r in second.kept] == [T0, T0 + 4 * H, T0 + 8 * H]
    third = cleaning.advance(second.kept, [reading(12, 210, 40)], watermark_ms=T0 + 6 * H)
    assert [r.at_ms for r in third.kept] == [T0 + 4 * H, T0 + 8 * H, T0 + 12 * H]
    assert cleaning.load_state(cleaning.dump_state(third.kept)) == third.kept


def test_a_reading_within_the_watermark_after_later_ones_retracts_and_replaces_its_interval():
    kept = cleaning.advance([], [reading(0, 100, 10), reading(8, 300, 50)], watermark_ms=0).kept
    # 0 h -> 8 h was 200 entries, 40 exits; the 4 h reading (180, 20) arrives late but within
    # the watermark (2 h): 0->4 is 80/10, 4->8 is 120/30, and the old 200/40 is taken back.
    late = cleaning.advance(kept, [reading(4, 180, 20)], watermark_ms=T0 + 2 * H)
    assert late.contributions == [counted(8, 200, 40).negated(), counted(4, 80, 10), counted(8, 120, 30)]
    assert sum(c.entries for c in late.contributions) == 0  # 180-100 + 300-180 - (300-100)
    # A REGULAR reading arriving after its RECOVR AUD duplicate replaces it the same way.
    recovr = cleaning.advance([], [reading(0, 100, 10), reading(4, 190, 25, "RECOVR AUD")], watermark_ms=0)
    regular = cleaning.advance(recovr.kept, [reading(4, 180, 20)], watermark_ms=0)
    assert regular.contributions == [counted(4, 90, 15).negated(), counted(4, 80, 10)]
    assert regular.dropped == {"recovr_duplicate": 1, "repeat": 0}


def test_a_reading_older_than_the_watermark_is_late_and_changes_nothing():
    kept = cleaning.advance([], [reading(0, 100, 10), reading(8, 300, 50)], watermark_ms=0).kept
    result = cleaning.advance(kept, [reading(12, 310, 52), reading(4, 180, 20)], watermark_ms=T0 + 6 * H)
    assert result.late == [1]
    assert result.contributions == [counted(12, 10, 2)]
    assert T0 + 4 * H not in [r.at_ms for r in result.kept]

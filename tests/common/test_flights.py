"""apps/common/flights.py: the shared message flights (what room.js draws, and the SMIL form)."""
from __future__ import annotations

from apps.common.flights import MIN_FLIGHT_MS, Answer, Flight, Timing, group, smil


def test_a_short_hop_still_glides_for_the_minimum():
    timing = Timing.span(0, 1000)  # 3 s for 1,000 ms: 3 animation ms per ms
    assert timing.scale == 3.0
    assert timing.duration(10, 11) == MIN_FLIGHT_MS
    assert timing.duration(0, 500) == 1500


def test_a_tiny_span_is_not_slowed_past_the_cap():
    assert Timing.span(5, 6).scale == 120.0
    assert Timing.span(5, 6).at(7) == 240.0


def test_timing_of_messages_counts_a_lost_one_as_ten_ms():
    msgs = [{"sent": 100, "arrives": 101}, {"sent": 102, "arrives": None}]
    assert Timing.of(msgs) == Timing.span(100, 112)


def test_a_lost_flight_stops_half_way():
    assert Flight(0, 0, 100, 40, 0, 600, "req", lost=True).item() == "m,0,0,50,20,0,600,req lost"
    assert Flight(0, 0, 100, 40, 12.4, 700.6, "okr").item() == "m,0,0,100,40,12,701,okr"


def test_group_is_one_element_with_every_item_and_no_separator_in_a_text():
    g = group("fl7", [Flight(1, 2, 3, 4, 0, 600, "req"), Answer(5, 6, 90, "okr", "OK; fine")], "flights race")
    assert g == "<g id='fl7' class='flights race' data-flights='m,1,2,3,4,0,600,req;a,5,6,90,okr,OK  fine'/>"


def test_group_escapes_a_name():
    assert "&#x27;" in group("fl1", [Answer(0, 0, 0, "okr", "O'Brien")])


def test_smil_is_begun_by_the_page_and_never_shorter_than_the_minimum():
    s = smil("f1-0", "M0 0L10 0", 100, "flight k1", at_ms=250)
    assert "begin='indefinite'" in s and "data-at='250'" in s and "dur='0.6s'" in s
    assert "<path class='trail' d='M0 0L10 0'/>" in s
    assert "trail" not in smil("f1-1", "M0 0L10 0", 900, trail=False)

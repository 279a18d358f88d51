"""Segments (ilmarket.segments): extremum bars, half-open bar ranges, the extrema a run uses, and the IL cache key."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from ilmarket import data
from ilmarket.agents import il_digest
from ilmarket.core import SegmentConfig, get_config
from ilmarket.data import load_bars, load_extrema, session_table, synthetic_bars
from ilmarket.segments import (covered_mask, extrema_fingerprint, find_extrema, make_segments,
                               misdirected_segments, resolve_extrema, segment_bars, segment_slices, segment_table)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = {f: DATA / f for f in ("qqq_5min.parquet", "qqq_1min.parquet")}
SESSIONS_2023 = session_table("2023-01-03", "2023-12-29")
FULL_DAYS = SESSIONS_2023[(SESSIONS_2023["close"] - SESSIONS_2023["open"]) == pd.Timedelta(hours=6.5)]
HALF_HOURS = pd.DatetimeIndex([o + pd.Timedelta(minutes=30 * k) for o in FULL_DAYS["open"] for k in range(13)],
                              name="timestamp")  # 30-minute bars on the full sessions of 2023


@pytest.fixture(scope="module", params=sorted(REAL))
def real_bars(request):
    path = REAL[request.param]
    if not path.exists(): pytest.skip(f"shared data file {path.name} not found")
    return load_bars(path)


@pytest.fixture(scope="module")
def shifted_bars(real_bars):
    "The real 2024-01..07 bars of the file moved session by session onto 2025 sessions: real prices, no Table 6."
    b = real_bars[(real_bars.index >= "2024-01-01") & (real_bars.index < "2024-08-01")]
    days = b.index.normalize().tz_localize(None)
    src = days.unique()
    tgt = session_table("2025-06-02", "2026-12-31")
    tgt = tgt[(tgt["close"] - tgt["open"]) == pd.Timedelta(hours=6.5)].iloc[:len(src)]  # full sessions only
    off = b.index - b.index.normalize() - pd.Timedelta(hours=9, minutes=30)
    out = b.copy()
    out.index = (pd.DatetimeIndex(tgt["open"]).tz_convert("UTC")[src.get_indexer(days)] + off).tz_convert(b.index.tz)
    return load_bars(out.rename_axis("timestamp"))


def _in_piece(bars, h):
    "Zig-zag segments at h whose two extrema lie in one piece of data, with bars."
    z = find_extrema(bars, h)
    tab = segment_table(bars, z)
    same = z["piece"].to_numpy()[1:] == z["piece"].to_numpy()[:-1]
    return tab[same & (tab["n_bars"] > 0).to_numpy()]


def test_table6_segments_rise_and_fall_on_real_and_synthetic_bars(real_bars):
    for bars in (real_bars, synthetic_bars(freq="30min", seed=1)):
        tab = segment_table(bars)
        assert covered_mask(tab, 0.8).sum() >= 3
        assert misdirected_segments(tab, 0.8).empty, misdirected_segments(tab, 0.8)[["seg_id", "regime", "ret"]]


@pytest.mark.parametrize("h", [0.08, 0.04])
def test_zigzag_segments_rise_and_fall_by_the_threshold(real_bars, h):
    for bars in (real_bars, synthetic_bars(freq="30min", seed=2)):
        seg = _in_piece(bars, h)
        assert len(seg) >= 2
        assert (seg.loc[seg["regime"] == "bull", "ret"] >= h - 1e-12).all()
        assert (seg.loc[seg["regime"] == "bear", "ret"] <= -h + 1e-12).all()


def test_segment_starts_at_the_extremum_bar_and_returns_close_to_close(real_bars):
    tab = segment_table(real_bars)
    c = real_bars["close"]
    days = real_bars.index.normalize().tz_localize(None)
    used = tab[covered_mask(tab, 0.8)]
    for r in used.itertuples():
        day = c[days == r.start]
        assert c[r.start_ts] == (day.max() if r.start_kind == "max" else day.min())
        assert r.ret == pytest.approx(c[r.end_ts] / c[r.start_ts] - 1, rel=1e-12)
    sl = segment_slices(real_bars, used)
    assert (sl[1:, 0] >= sl[:-1, 1]).all()  # no bar in two segments
    consecutive = used["seg_id"].diff().to_numpy()[1:] == 1
    assert (sl[1:, 0] == sl[:-1, 1])[consecutive].all()  # neighbours meet at the extremum bar
    first = segment_bars(real_bars, used.iloc[0])
    assert first.index[0] == used["start_ts"].iloc[0] and len(first) == used["n_bars"].iloc[0]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), vol=st.sampled_from([0.004, 0.01]), h=st.sampled_from([0.02, 0.05]))
def test_zigzag_segments_on_random_walks(seed, vol, h):
    close = 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, vol, len(HALF_HOURS))))
    bars = pd.DataFrame({"close": close}, index=HALF_HOURS)
    seg = _in_piece(bars, h)
    assert (seg.loc[seg["regime"] == "bull", "ret"] >= h - 1e-12).all()
    assert (seg.loc[seg["regime"] == "bear", "ret"] <= -h + 1e-12).all()
    sl = segment_slices(bars, seg)
    assert (np.diff(sl, axis=1)[:, 0] == seg["n_bars"].to_numpy()).all()
    assert np.allclose(close[sl[:, 1]] / close[sl[:, 0]] - 1, seg["ret"].to_numpy(), rtol=1e-12)


def test_auto_uses_table6_where_the_bars_cover_it(real_bars):
    ext, why = resolve_extrema(real_bars, SegmentConfig(), 0.8)
    assert ext.attrs["source"] == "table6" and why.startswith("Table 6")
    assert extrema_fingerprint(ext) == extrema_fingerprint(load_extrema())


def test_bars_after_table6_get_zigzag_segments_and_roles(shifted_bars):
    cfg = get_config("quick")
    ext, why = resolve_extrema(shifted_bars, cfg.segments, 0.8)
    assert ext.attrs["source"].startswith("zigzag:") and "cover 0 of its 36 segments" in why
    segs = make_segments(shifted_bars, cfg)
    assert segs.attrs["extrema_reason"] == why
    for role in ("il", "holdout", "backtest"): assert (segs["role"] == role).sum() >= 1
    assert misdirected_segments(segs, 0.8).empty
    with pytest.raises(ValueError, match="does not overlap the bars"):
        resolve_extrema(shifted_bars, SegmentConfig(source="table6"))
    with pytest.raises(ValueError, match="only 0 segment"):
        make_segments(shifted_bars, cfg, extrema=load_extrema())


@pytest.mark.parametrize("source, msg", [("zigzag:8", "fraction in (0, 1)"), ("zigzag:x", "fraction in (0, 1)"),
                                         ("no_such_file.csv", "no extrema file of that name")])
def test_bad_sources_say_what_is_wrong(source, msg):
    bars = synthetic_bars("2024-01-02", "2024-03-28", freq="30min")
    with pytest.raises((ValueError, FileNotFoundError), match=re.escape(msg)):
        resolve_extrema(bars, SegmentConfig(source=source))


def test_il_digest_changes_when_one_extremum_moves(tmp_path, monkeypatch):
    bars = synthetic_bars("2023-06-01", "2024-07-31", freq="30min")  # covers Table 6's last six segments
    table = tmp_path / "segments.csv"
    t6 = load_extrema()
    write = lambda ext: ext.assign(date=ext["date"].dt.strftime("%Y-%m-%d")).to_csv(table, index=False)
    moved = t6.assign(date=t6["date"].where(t6.index != 35, pd.Timestamp("2024-04-22")))  # 2024-04-19 → 04-22
    monkeypatch.setattr(data, "_segments_csv", lambda: table)  # stands in for an edited data/segments.csv
    for cfg in (get_config("quick"), get_config("quick", settings={"segments.source": str(table)})):
        write(t6)
        before = il_digest(cfg, bars)
        assert il_digest(cfg, bars) == before
        write(moved)
        assert il_digest(cfg, bars) != before, cfg.segments.source

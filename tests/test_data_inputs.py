"""The loader against files users really have: every valid layout loads to the same frame, every malformed
file raises DataError naming the problem, and the real QQQ files reproduce PROVENANCE.md's day counts."""
import gzip
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ilmarket.data import (OHLCV, TZ, DataError, bar_minutes, bars_fingerprint, coverage, load_bars,
                           resample_bars, synthetic_bars)

DATA = Path("/work/shared/data")
if os.environ.get("ILMARKET_DATA"): DATA = Path(os.environ["ILMARKET_DATA"]).parent


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    "Two sessions of 1-minute bars (a full day and the 2024-07-03 early close), in canonical form."
    return synthetic_bars("2024-07-02", "2024-07-03", freq="1min", seed=11)


def _vendor(base: pd.DataFrame, extended: bool = True) -> pd.DataFrame:
    "The base bars as a vendor frame: a `ts` column (tz-aware UTC), lower-case OHLCV, plus pre/post-market rows."
    df = base.reset_index().rename(columns={"timestamp": "ts"})
    if extended:  # rows a vendor includes and the loader must drop
        pre = df.iloc[[0]].assign(ts=pd.Timestamp("2024-07-02 08:15", tz=TZ))
        post = df.iloc[[-1]].assign(ts=pd.Timestamp("2024-07-03 16:00", tz=TZ))
        df = pd.concat([pre, df, post], ignore_index=True)
    df["ts"] = df["ts"].dt.tz_convert("UTC")
    df["volume"] = df["volume"].astype("int64")
    return df


def _ohlcv(df: pd.DataFrame, names=("open", "high", "low", "close", "volume")) -> dict:
    return dict(zip(names, (df[c] for c in OHLCV)))


def _wall(df: pd.DataFrame, tz: str) -> pd.Series:
    return df["ts"].dt.tz_convert(tz).dt.tz_localize(None)


# Each writer takes (vendor frame, folder) and returns (path or frame, tz to pass).
def w_iso_utc_offset(v, d):
    p = d / "iso_utc.csv"
    pd.DataFrame({"timestamp": v.ts.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"), **_ohlcv(v)}).to_csv(p, index=False)
    return p, None

def w_iso_z(v, d):
    p = d / "iso_z.csv"
    pd.DataFrame({"timestamp": v.ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ"), **_ohlcv(v)}).to_csv(p, index=False)
    return p, None

def w_iso_ny_offset_upper(v, d):
    p = d / "iso_ny_upper.csv"
    ts = v.ts.dt.tz_convert(TZ).map(lambda t: t.isoformat())
    pd.DataFrame({"Datetime": ts, **_ohlcv(v, ("OPEN", "HIGH", "LOW", "CLOSE", "VOLUME"))}).to_csv(p, index=False)
    return p, None

def w_iso_naive_ny(v, d):
    p = d / "naive_ny.csv"
    pd.DataFrame({"timestamp": _wall(v, TZ).dt.strftime("%Y-%m-%d %H:%M:%S"), **_ohlcv(v)}).to_csv(p, index=False)
    return p, TZ

def w_iso_naive_utc(v, d):
    p = d / "naive_utc.csv"
    pd.DataFrame({"time": _wall(v, "UTC").dt.strftime("%Y-%m-%d %H:%M"), **_ohlcv(v, ("Open", "High", "Low", "Close", "Volume"))}).to_csv(p, index=False)
    return p, "UTC"

def w_epoch_s(v, d):
    p = d / "epoch_s.csv"
    pd.DataFrame({"timestamp": v.ts.dt.as_unit("s").astype("int64"), "gmtoffset": 0, **_ohlcv(v),
                  "datetime_str": v.ts.dt.strftime("%Y-%m-%d %H:%M:%S")}).to_csv(p, index=False)
    return p, None

def w_epoch_ms_polygon(v, d):
    p = d / "polygon.csv"
    pd.DataFrame({"t": v.ts.dt.as_unit("ms").astype("int64"), **_ohlcv(v, ("o", "h", "l", "c", "v")),
                  "vw": v.close, "n": 12}).to_csv(p, index=False)
    return p, None

def w_epoch_ms_parquet(v, d):
    p = d / "epoch_ms.parquet"
    pd.DataFrame({"timestamp": v.ts.dt.as_unit("ms").astype("int64"), **_ohlcv(v)}).to_parquet(p)
    return p, None

def w_split_date_time(v, d):
    p = d / "split.csv"
    w = _wall(v, TZ)
    pd.DataFrame({"Date": w.dt.strftime("%Y-%m-%d"), "Time": w.dt.strftime("%H:%M:%S"), **_ohlcv(v, ("Open", "High", "Low", "Close", "Volume"))}).to_csv(p, index=False)
    return p, TZ

def w_split_us_pacific(v, d):
    p = d / "split_pacific.csv"
    w = _wall(v, "America/Los_Angeles")
    pd.DataFrame({"date": w.dt.strftime("%m/%d/%Y"), "time": w.dt.strftime("%H:%M"), **_ohlcv(v)}).to_csv(p, index=False)
    return p, "America/Los_Angeles"

def w_vendor_extras(v, d):
    p = d / "extras.csv"
    pd.DataFrame({"symbol": "QQQ", " Timestamp ": v.ts.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"), **_ohlcv(v, ("Open", "High", "Low", "Close", "Volume")),
                  "Adj Close": v.close * 0.99, "vwap": v.close, "transactions": 5, "trade_count": 3}).to_csv(p, index=False)
    return p, None

def w_csv_gz(v, d):
    p = d / "bars.csv.gz"
    pd.DataFrame({"timestamp": v.ts.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"), **_ohlcv(v)}).to_csv(p, index=False, compression="gzip")
    return p, None

def w_parquet_aware(v, d):
    p = d / "aware.parquet"
    pd.DataFrame({"timestamp": v.ts, **_ohlcv(v)}).to_parquet(p)
    return p, None

def w_parquet_index_ny(v, d):
    p = d / "indexed.parquet"
    pd.DataFrame(_ohlcv(v)).set_index(pd.DatetimeIndex(v.ts.dt.tz_convert(TZ), name="timestamp")).to_parquet(p)
    return p, None

def w_parquet_naive(v, d):
    p = d / "naive.parquet"
    pd.DataFrame({"datetime": _wall(v, TZ), **_ohlcv(v)}).to_parquet(p)
    return p, TZ

def w_semicolon_european(v, d):
    p = d / "semicolon.csv"
    pd.DataFrame({"Timestamp": v.ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ"), **_ohlcv(v, ("Open", "High", "Low", "Close", "Volume"))}).to_csv(p, index=False, sep=";")
    return p, None

def w_frame_index_and_column(v, d):
    f = pd.DataFrame({"timestamp": v.ts, **_ohlcv(v)})
    return f.set_index(pd.DatetimeIndex(v.ts, name="timestamp"), drop=False).rename_axis("timestamp"), None

def w_frame(v, d):
    return pd.DataFrame({"timestamp": v.ts, **_ohlcv(v, ("Open", "High", "Low", "Close", "Volume"))}), None

VALID = [w_iso_utc_offset, w_iso_z, w_iso_ny_offset_upper, w_iso_naive_ny, w_iso_naive_utc, w_epoch_s,
         w_epoch_ms_polygon, w_epoch_ms_parquet, w_split_date_time, w_split_us_pacific, w_vendor_extras, w_csv_gz,
         w_parquet_aware, w_parquet_index_ny, w_parquet_naive, w_semicolon_european, w_frame, w_frame_index_and_column]


@pytest.mark.parametrize("writer", VALID, ids=[w.__name__[2:] for w in VALID])
def test_valid_layouts_load_identically(writer, base, tmp_path):
    src, tz = writer(_vendor(base), tmp_path)
    got = load_bars(src, tz=tz)
    pd.testing.assert_frame_equal(got, base, check_freq=False)
    assert got.index.name == "timestamp" and str(got.index.tz) == TZ
    assert got.attrs["freq"] == "1min"
    assert got.attrs["source"] == (src.name if isinstance(src, Path) else "<DataFrame>")
    assert bars_fingerprint(got) == bars_fingerprint(base)


def test_early_close_and_thin_days(base, caplog):
    assert base.loc["2024-07-03"].index[-1] == pd.Timestamp("2024-07-03 12:59", tz=TZ)
    thin = pd.concat([base.loc["2024-07-02"].iloc[:100], base.loc["2024-07-03"]])
    with caplog.at_level(logging.WARNING, logger="ilmarket"):
        got = load_bars(thin)
    assert "2024-07-02 (100/390)" in caplog.text
    assert got.index.normalize().unique().tolist() == [pd.Timestamp("2024-07-03", tz=TZ)]
    assert len(load_bars(thin, min_day_fraction=0.25)) == 310


def test_off_grid_row_dropped(base, caplog):
    v = _vendor(base, extended=False)
    odd = v.iloc[[5]].assign(ts=v.ts.iloc[5] + pd.Timedelta(seconds=37))
    v = pd.concat([v.iloc[:6], odd, v.iloc[6:]], ignore_index=True)
    with caplog.at_level(logging.WARNING, logger="ilmarket"):
        got = load_bars(pd.DataFrame({"timestamp": v.ts, **_ohlcv(v)}))
    assert "off the 1-minute grid" in caplog.text
    pd.testing.assert_frame_equal(got, base, check_freq=False)


# ---- the bad-input corpus: (id, how to make it, tz, expected message parts) --------------------------------

def _csv(v):
    return pd.DataFrame({"timestamp": v.ts.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"), **_ohlcv(v)})

def _write(df, name):
    def make(v, d):
        p = d / name
        df(v).to_csv(p, index=False)
        return p
    return make

def _edit(fn):
    "A CSV of the vendor frame after `fn` edited the table (row 10 of the table is line 12 of the file)."
    def df(v):
        t = _csv(v)
        t = t.astype({c: object for c in OHLCV}) if fn.__name__.startswith("txt") else t
        return fn(t)
    return df

def txt_close(t): t.loc[10, "close"] = "abc"; return t
def nan_close(t): t.loc[10, "close"] = np.nan; return t
def zero_open(t): t.loc[10, "open"] = 0.0; return t
def neg_low(t): t.loc[10, ["low"]] = -1.0; return t
def high_below(t): t.loc[10, "high"] = min(t.loc[10, "open"], t.loc[10, "close"]) - 1; return t
def low_above(t): t.loc[10, "low"] = max(t.loc[10, "open"], t.loc[10, "close"]) + 1; return t
def neg_volume(t): t.loc[10, "volume"] = -5; return t
def nan_volume(t): t["volume"] = t["volume"].astype(float); t.loc[10, "volume"] = np.nan; return t
def dup_ts(t): t.loc[11, "timestamp"] = t.loc[10, "timestamp"]; return t
def unsorted(t): t.iloc[[10, 11]] = t.iloc[[11, 10]].to_numpy(); return t
def no_volume(t): return t.drop(columns="volume")
def no_time(t): return t.drop(columns="timestamp")
def naive(t): t["timestamp"] = t["timestamp"].str[:19]; return t
def bad_time(t): t.loc[10, "timestamp"] = "yesterday at noon"; return t
def mixed_offset(t): t.loc[10, "timestamp"] = t.loc[10, "timestamp"][:19]; return t
def two_closes(t): t["Close"] = t["close"]; return t
def header_only(t): return t.iloc[:0]
def daily_at_midnight(t):
    t = t.iloc[:3].copy(); t["timestamp"] = ["2024-07-01T04:00:00+00:00", "2024-07-02T04:00:00+00:00", "2024-07-03T04:00:00+00:00"]; return t
def yyyymmdd(t): t["timestamp"] = 20240702; return t

def _raw(name, data: bytes):
    def make(v, d):
        p = d / name
        p.write_bytes(data)
        return p
    return make

def _folder(v, d):
    (d / "bars.csv").mkdir()
    return d / "bars.csv"

BAD = [
    ("missing_column", _write(_edit(no_volume), "no_volume.csv"), None, ["no_volume.csv", "missing column(s) volume"]),
    ("no_time_column", _write(_edit(no_time), "no_time.csv"), None, ["no_time.csv", "no timestamp column"]),
    ("non_numeric", _write(_edit(txt_close), "text_close.csv"), None, ["text_close.csv", "'close' has non-numeric", "line 12", "'abc'"]),
    ("nan_price", _write(_edit(nan_close), "nan_close.csv"), None, ["nan_close.csv", "'close' is missing", "line 12"]),
    ("zero_price", _write(_edit(zero_open), "zero_open.csv"), None, ["zero_open.csv", "'open' is zero or negative", "line 12"]),
    ("negative_price", _write(_edit(neg_low), "neg_low.csv"), None, ["neg_low.csv", "'low' is zero or negative", "line 12"]),
    ("high_below_body", _write(_edit(high_below), "high.csv"), None, ["high.csv", "high < max(open, close)", "1 row(s)", "line 12"]),
    ("low_above_body", _write(_edit(low_above), "low.csv"), None, ["low.csv", "low > min(open, close)", "line 12"]),
    ("negative_volume", _write(_edit(neg_volume), "neg_vol.csv"), None, ["neg_vol.csv", "'volume' is negative", "line 12", "volume=-5"]),
    ("nan_volume", _write(_edit(nan_volume), "nan_vol.csv"), None, ["nan_vol.csv", "'volume' is missing", "line 12"]),
    ("duplicate_timestamps", _write(_edit(dup_ts), "dup.csv"), None, ["dup.csv", "duplicate timestamps", "line 12", "line 13"]),
    ("unsorted", _write(_edit(unsorted), "unsorted.csv"), None, ["unsorted.csv", "not sorted", "line 13", "line 12"]),
    ("naive_without_tz", _write(_edit(naive), "naive.csv"), None, ["naive.csv", "without a time zone", "tz="]),
    ("unparseable_time", _write(_edit(bad_time), "bad_time.csv"), None, ["bad_time.csv", "not timestamps", "line 12", "yesterday"]),
    ("mixed_offsets", _write(_edit(mixed_offset), "mixed.csv"), None, ["mixed.csv", "mixes timestamps with and without", "line 12"]),
    ("ambiguous_columns", _write(_edit(two_closes), "two_closes.csv"), None, ["two_closes.csv", "both mean 'close'"]),
    ("header_only", _write(_edit(header_only), "header.csv"), None, ["header.csv", "no data rows"]),
    ("no_rth_bars", _write(_edit(daily_at_midnight), "daily.csv"), None, ["daily.csv", "no bar falls in NYSE regular hours"]),
    ("implausible_epoch", _write(_edit(yyyymmdd), "yyyymmdd.csv"), None, ["yyyymmdd.csv", "not plausible"]),
    ("unknown_tz", _write(_edit(naive), "naive2.csv"), "Mars/Olympus", ["naive2.csv", "cannot use tz='Mars/Olympus'"]),
    ("empty_file", _raw("empty.csv", b""), None, ["empty.csv", "empty file"]),
    ("blank_file", _raw("blank.csv", b"\n\n  \n"), None, ["blank.csv", "empty file"]),
    ("binary_csv", _raw("binary.csv", bytes(range(256)) * 8), None, ["binary.csv", "binary file"]),
    ("garbage_parquet", _raw("garbage.parquet", b"PAR1" + os.urandom(500)), None, ["garbage.parquet", "not a readable parquet file"]),
    ("text_as_parquet", _raw("text.parquet", b"timestamp,open\n1,2\n"), None, ["text.parquet", "not a readable parquet file"]),
    ("not_gzip", _raw("bars.csv.gz", b"timestamp,open,high\n1,2,3\n"), None, ["bars.csv.gz", "not a readable gzip file"]),
    ("latin1_csv", _raw("latin1.csv", "timestamp,open,high,low,close,volume,note\n2024-07-02T13:30:00+00:00,1,1,1,1,1,caf\xe9\n".encode("latin-1") * 1), None, ["latin1.csv", "not UTF-8"]),
    ("unknown_extension", _raw("bars.xlsx", b"PK\x03\x04"), None, ["bars.xlsx", "unsupported file type"]),
    ("missing_file", lambda v, d: d / "nowhere.parquet", None, ["nowhere.parquet", "file not found"]),
    ("folder", _folder, None, ["bars.csv", "is a folder"]),
]


def test_corpus_is_large():
    assert len(BAD) >= 15


@pytest.mark.parametrize("make,tz,parts", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_raises_clear_error(make, tz, parts, base, tmp_path):
    src = make(_vendor(base), tmp_path)
    with pytest.raises(DataError) as info:
        load_bars(src, tz=tz)
    msg = str(info.value)
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"
    err = info.value
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__), "a library traceback leaks through"
    assert isinstance(err, ValueError) and "\n" not in msg


def test_bad_frame_input():
    with pytest.raises(DataError, match="expected a file path or a DataFrame"):
        load_bars(42)
    df = pd.DataFrame({"timestamp": pd.date_range("2024-07-02 09:30", periods=3, freq="1min", tz=TZ),
                       "open": [1.0, 1, 1], "high": [1.0, 1, 1], "low": [1.0, 1, 1], "close": [1.0, 1, 1], "volume": [1, -1, 1]})
    with pytest.raises(DataError, match=r"<DataFrame>: column 'volume' is negative in 1 row\(s\), first: row 1"):
        load_bars(df)


def test_resample_matches_manual(base):
    r = resample_bars(base, "5min")
    assert len(r) == 78 + 42 and r.attrs["freq"] == "5min" and bar_minutes(r) == 5
    manual = base.loc["2024-07-02 09:35":"2024-07-02 09:39"]
    assert r.loc[pd.Timestamp("2024-07-02 09:35", tz=TZ)].tolist() == [
        manual.open.iloc[0], manual.high.max(), manual.low.min(), manual.close.iloc[-1], manual.volume.sum()]
    r60 = resample_bars(base, "60min")  # session-anchored: 09:30, 10:30, …, 15:30 (a 30-minute last bin)
    assert r60.loc["2024-07-02"].index.strftime("%H:%M").tolist() == ["09:30", "10:30", "11:30", "12:30", "13:30", "14:30", "15:30"]


# ---- the real files ---------------------------------------------------------------------------------------

REAL_1MIN, REAL_5MIN = DATA / "qqq_1min.parquet", DATA / "qqq_5min.parquet"
needs_real = pytest.mark.skipif(not (REAL_1MIN.exists() and REAL_5MIN.exists()), reason="real QQQ files not present")


def _days_per_year(bars: pd.DataFrame) -> dict:
    days = bars.index.normalize().unique()
    return {int(y): int(n) for y, n in pd.Series(days.year).value_counts().sort_index().items()}


@needs_real
def test_real_day_counts_match_provenance(caplog):
    one = load_bars(REAL_1MIN)
    assert _days_per_year(one) == {2020: 87, 2021: 20, 2022: 20, 2023: 21, 2024: 146}
    assert one.index.normalize().nunique() == 294 and one.attrs == {"source": "qqq_1min.parquet", "freq": "1min"}
    five_all = load_bars(REAL_5MIN, min_day_fraction=0.0)  # every day with data ("days with 5-min")
    assert _days_per_year(five_all) == {2020: 123, 2021: 252, 2022: 251, 2023: 250, 2024: 146}
    assert five_all.index.normalize().nunique() == 1022 and len(five_all) == 79_348
    with caplog.at_level(logging.WARNING, logger="ilmarket"):
        five = load_bars(REAL_5MIN)  # default: the two vendor-truncated days are dropped
    assert "2020-10-27 (37/78)" in caplog.text and "2020-11-04 (17/78)" in caplog.text
    assert five.index.normalize().nunique() == 1020  # PROVENANCE's "full 5-min days"
    cov = coverage(five_all, "2018-12-20", "2024-07-31").summary
    assert cov.loc[["2020", "2021", "2022", "2023", "2024"], "full_days"].tolist() == [121, 252, 251, 250, 146]
    assert int(cov.loc["total", "sessions"]) == 1411 and int(cov.loc["total", "days"]) == 1022


@needs_real
def test_real_1min_resampled_equals_5min_on_polygon_days():
    src = pd.read_csv(DATA / "qqq_sources_by_day.csv", parse_dates=["date"])
    poly = set(src.loc[src["src_5min"] == "polygon_1min_resampled", "date"])
    r = resample_bars(load_bars(REAL_1MIN), "5min")
    five = load_bars(REAL_5MIN)
    on = lambda b: b[b.index.normalize().tz_localize(None).isin(poly)]
    a, b = on(r), on(five)
    assert len(a) == len(b) > 20_000
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


# ---- default_bars and the synthetic market ------------------------------------------------------------------

def test_default_bars_order(tmp_path, monkeypatch, base, caplog):
    from ilmarket.core import get_config
    from ilmarket.data import default_bars
    monkeypatch.setenv("ILMARKET_HOME", str(tmp_path))  # a project root without data/raw/
    monkeypatch.delenv("ILMARKET_DATA", raising=False)
    with caplog.at_level(logging.INFO, logger="ilmarket"):
        syn = default_bars(get_config("quick"))
    assert syn.attrs == {"source": "synthetic", "freq": "5min"} and "synthetic market" in caplog.text
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    p, _ = w_iso_utc_offset(_vendor(base), raw)
    assert default_bars().attrs["source"] == p.name
    env, _ = w_epoch_ms_parquet(_vendor(base), tmp_path)
    monkeypatch.setenv("ILMARKET_DATA", str(env))
    assert default_bars().attrs["source"] == env.name
    cfg_path, _ = w_csv_gz(_vendor(base), tmp_path)
    assert default_bars(get_config("quick", data_path=str(cfg_path))).attrs["source"] == cfg_path.name
    assert default_bars(p).attrs["source"] == p.name
    monkeypatch.setenv("ILMARKET_DATA", str(tmp_path / "gone.parquet"))
    with pytest.raises(DataError, match="gone.parquet: file not found"):
        default_bars()


def test_synthetic_schema_regimes_and_determinism():
    from ilmarket.data import synthetic_extrema
    a = synthetic_bars(freq="1min", seed=5)
    assert list(a.columns) == OHLCV and a.index.name == "timestamp" and str(a.index.tz) == TZ
    assert a.attrs == {"source": "synthetic", "freq": "1min"} and len(a) == 548_310
    assert (a.dtypes == "float64").all() and a.index.is_monotonic_increasing and a.index.is_unique
    assert (a.high >= a[["open", "close"]].max(axis=1)).all() and (a.low <= a[["open", "close"]].min(axis=1)).all()
    assert (a.volume >= 1).all() and (a.low > 0).all()
    again = load_bars(a, min_day_fraction=1.0)  # RTH, on the grid, every day complete: passes unchanged
    assert bars_fingerprint(again) == bars_fingerprint(a) and list(again.columns) == OHLCV
    ext = synthetic_extrema()
    first = a.close.groupby(a.index.normalize().tz_localize(None)).first().reindex(ext.session).to_numpy()
    ret = first[1:] / first[:-1] - 1
    kinds = ext.kind.to_numpy()
    assert (ret[(kinds[:-1] == "min") & (kinds[1:] == "max")] > 0).all()
    assert (ret[(kinds[:-1] == "max") & (kinds[1:] == "min")] < 0).all()
    b = synthetic_bars("2021-03-01", "2021-03-31", freq="5min", seed=5)
    pd.testing.assert_frame_equal(b, synthetic_bars("2021-03-01", "2021-03-31", freq="5min", seed=5))
    assert not b.equals(synthetic_bars("2021-03-01", "2021-03-31", freq="5min", seed=6))
    with pytest.raises(DataError, match="whole minutes dividing 390"):
        synthetic_bars(freq="7min")


# ---- properties of resampling ----------------------------------------------------------------------------------

from hypothesis import given, settings, strategies as st, HealthCheck

_DAYS = synthetic_bars("2020-11-25", "2020-11-30", freq="1min", seed=2)  # includes the 2020-11-27 early close


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keep=st.lists(st.booleans(), min_size=len(_DAYS), max_size=len(_DAYS)).filter(lambda k: sum(k) > 10),
       rule=st.sampled_from(["5min", "15min", "30min", "65min"]))
def test_resample_properties(keep, rule):
    b = _DAYS[np.array(keep)]
    r = resample_bars(b, rule)
    assert r.volume.sum() == b.volume.sum() and r.high.max() == b.high.max() and r.low.min() == b.low.min()
    assert r.index.is_monotonic_increasing and r.index.is_unique
    assert (r.high >= r[["open", "close"]].max(axis=1)).all() and (r.low <= r[["open", "close"]].min(axis=1)).all()
    assert r.index.isin(resample_bars(_DAYS, rule).index).all()  # bins anchored at the session open, holes or not
    if rule in ("15min", "30min"):
        pd.testing.assert_frame_equal(resample_bars(resample_bars(b, "5min"), rule), r)

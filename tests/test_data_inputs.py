"""The loader against files users really have: every valid layout loads to the same frame, every malformed
file raises DataError naming the problem, and the real QQQ files reproduce PROVENANCE.md's day counts."""
import gzip
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ilmarket.data import (OHLCV, TZ, DataError, bar_minutes, bars_fingerprint, coverage, load_bars,
                           resample_bars, resolve_data_path, synthetic_bars, volume_level_changes)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # the shared data beside the repository, if there


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


TITLE = ("Open", "High", "Low", "Close", "Volume")


def _ohlcv(df: pd.DataFrame, names=("open", "high", "low", "close", "volume")) -> dict:
    return dict(zip(names, (df[c] for c in OHLCV)))


def _wall(df: pd.DataFrame, tz: str) -> pd.Series:
    return df["ts"].dt.tz_convert(tz).dt.tz_localize(None)


# Each writer takes (vendor frame, folder) and returns (path or frame, keyword arguments of load_bars).
def w_iso_utc_offset(v, d):
    p = d / "iso_utc.csv"
    pd.DataFrame({"timestamp": v.ts.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"), **_ohlcv(v)}).to_csv(p, index=False)
    return p, {}

def w_iso_z(v, d):
    p = d / "iso_z.csv"
    pd.DataFrame({"timestamp": v.ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ"), **_ohlcv(v)}).to_csv(p, index=False)
    return p, {}

def w_iso_ny_offset_upper(v, d):
    p = d / "iso_ny_upper.csv"
    ts = v.ts.dt.tz_convert(TZ).map(lambda t: t.isoformat())
    pd.DataFrame({"Datetime": ts, **_ohlcv(v, ("OPEN", "HIGH", "LOW", "CLOSE", "VOLUME"))}).to_csv(p, index=False)
    return p, {}

def w_iso_naive_ny(v, d):
    p = d / "naive_ny.csv"
    pd.DataFrame({"timestamp": _wall(v, TZ).dt.strftime("%Y-%m-%d %H:%M:%S"), **_ohlcv(v)}).to_csv(p, index=False)
    return p, {"tz": TZ}

def w_iso_naive_utc(v, d):
    p = d / "naive_utc.csv"
    pd.DataFrame({"time": _wall(v, "UTC").dt.strftime("%Y-%m-%d %H:%M"), **_ohlcv(v, TITLE)}).to_csv(p, index=False)
    return p, {"tz": "UTC"}

def w_epoch_s(v, d):
    p = d / "epoch_s.csv"
    pd.DataFrame({"timestamp": v.ts.dt.as_unit("s").astype("int64"), "gmtoffset": 0, **_ohlcv(v),
                  "datetime_str": v.ts.dt.strftime("%Y-%m-%d %H:%M:%S")}).to_csv(p, index=False)
    return p, {}

def w_epoch_ms_polygon(v, d):
    p = d / "polygon.csv"
    pd.DataFrame({"t": v.ts.dt.as_unit("ms").astype("int64"), **_ohlcv(v, ("o", "h", "l", "c", "v")),
                  "vw": v.close, "n": 12}).to_csv(p, index=False)
    return p, {}

def w_epoch_ms_parquet(v, d):
    p = d / "epoch_ms.parquet"
    pd.DataFrame({"timestamp": v.ts.dt.as_unit("ms").astype("int64"), **_ohlcv(v)}).to_parquet(p)
    return p, {}

def w_split_date_time(v, d):
    p = d / "split.csv"
    w = _wall(v, TZ)
    pd.DataFrame({"Date": w.dt.strftime("%Y-%m-%d"), "Time": w.dt.strftime("%H:%M:%S"), **_ohlcv(v, TITLE)}).to_csv(
        p, index=False)
    return p, {"tz": TZ}

def w_split_us_pacific(v, d):
    p = d / "split_pacific.csv"
    w = _wall(v, "America/Los_Angeles")
    pd.DataFrame({"date": w.dt.strftime("%m/%d/%Y"), "time": w.dt.strftime("%H:%M"), **_ohlcv(v)}).to_csv(
        p, index=False)
    return p, {"tz": "America/Los_Angeles", "date_format": "%m/%d/%Y %H:%M"}

def w_vendor_extras(v, d):
    p = d / "extras.csv"
    pd.DataFrame({"symbol": "QQQ", " Timestamp ": v.ts.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"), **_ohlcv(v, TITLE),
                  "Adj Close": v.close * 0.99, "vwap": v.close, "transactions": 5, "trade_count": 3}).to_csv(
        p, index=False)
    return p, {}

def w_csv_gz(v, d):
    p = d / "bars.csv.gz"
    pd.DataFrame({"timestamp": v.ts.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"), **_ohlcv(v)}).to_csv(
        p, index=False, compression="gzip")
    return p, {}

def w_parquet_aware(v, d):
    p = d / "aware.parquet"
    pd.DataFrame({"timestamp": v.ts, **_ohlcv(v)}).to_parquet(p)
    return p, {}

def w_parquet_index_ny(v, d):
    p = d / "indexed.parquet"
    pd.DataFrame(_ohlcv(v)).set_index(pd.DatetimeIndex(v.ts.dt.tz_convert(TZ), name="timestamp")).to_parquet(p)
    return p, {}

def w_parquet_naive(v, d):
    p = d / "naive.parquet"
    pd.DataFrame({"datetime": _wall(v, TZ), **_ohlcv(v)}).to_parquet(p)
    return p, {"tz": TZ}

def w_semicolon_european(v, d):
    p = d / "semicolon.csv"
    pd.DataFrame({"Timestamp": v.ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ"), **_ohlcv(v, TITLE)}).to_csv(
        p, index=False, sep=";")
    return p, {}

def w_frame_index_and_column(v, d):
    f = pd.DataFrame({"timestamp": v.ts, **_ohlcv(v)})
    return f.set_index(pd.DatetimeIndex(v.ts, name="timestamp"), drop=False).rename_axis("timestamp"), {}

def w_frame(v, d):
    return pd.DataFrame({"timestamp": v.ts, **_ohlcv(v, TITLE)}), {}

def w_day_first_with_format(v, d):
    p = d / "day_first.csv"
    pd.DataFrame({"Datetime": _wall(v, TZ).dt.strftime("%d.%m.%y %H:%M"), **_ohlcv(v)}).to_csv(p, index=False)
    return p, {"tz": TZ, "date_format": "%d.%m.%y %H:%M"}

def w_end_stamped_with_option(v, d):
    p = d / "end_stamped.csv"
    ts = (v.ts + pd.Timedelta(minutes=1)).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    pd.DataFrame({"timestamp": ts, **_ohlcv(v)}).to_csv(p, index=False)
    return p, {"stamp": "end"}

VALID = [w_iso_utc_offset, w_iso_z, w_iso_ny_offset_upper, w_iso_naive_ny, w_iso_naive_utc, w_epoch_s,
         w_epoch_ms_polygon, w_epoch_ms_parquet, w_split_date_time, w_split_us_pacific, w_vendor_extras, w_csv_gz,
         w_parquet_aware, w_parquet_index_ny, w_parquet_naive, w_semicolon_european, w_frame, w_frame_index_and_column,
         w_day_first_with_format, w_end_stamped_with_option]


@pytest.mark.parametrize("writer", VALID, ids=[w.__name__[2:] for w in VALID])
def test_valid_layouts_load_identically(writer, base, tmp_path):
    src, kw = writer(_vendor(base), tmp_path)
    got = load_bars(src, **kw)
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
    t = t.iloc[:3].copy()
    t["timestamp"] = ["2024-07-01T04:00:00+00:00", "2024-07-02T04:00:00+00:00", "2024-07-03T04:00:00+00:00"]
    return t
def yyyymmdd(t): t["timestamp"] = 20240702; return t

def _raw(name, data: bytes):
    def make(v, d):
        p = d / name
        p.write_bytes(data)
        return p
    return make

LATIN1 = "timestamp,open,high,low,close,volume,note\n2024-07-02T13:30:00+00:00,1,1,1,1,1,caf\xe9\n".encode("latin-1")

def _folder(v, d):
    (d / "bars.csv").mkdir()
    return d / "bars.csv"

def dup_close(t): t.insert(5, "close", t["close"] * 1.01, allow_duplicates=True); return t

def _dup_parquet(v, d):
    "A parquet file whose schema names `close` twice (pyarrow writes it; pandas cannot)."
    p = d / "dup_close.parquet"
    cols = {"timestamp": v.ts, **_ohlcv(v)}
    names = ["timestamp", "open", "high", "low", "close", "close", "volume"]
    arrays = [pa.array(cols[n]) for n in names]
    pq.write_table(pa.Table.from_arrays(arrays, names=names), p)
    return p

def _dates(fmt):
    "Naive New York wall-clock text in `fmt` (the base bars fall on 2 and 3 July: day and month both <= 12)."
    return lambda t: t.assign(timestamp=pd.to_datetime(t["timestamp"]).dt.tz_convert(TZ).dt.strftime(fmt))

def _late_july(v, d):
    "Day-first text on 12 and 15 July 2024: pandas infers month-first from the first row (12.07 -> 7 December)."
    b = synthetic_bars("2024-07-12", "2024-07-15", freq="5min", seed=1)
    p = d / "late_july.csv"
    pd.DataFrame({"timestamp": b.index.strftime("%d/%m/%Y %H:%M"), **_ohlcv(b)}).to_csv(p, index=False)
    return p

def _end_stamped(minutes):
    "The base bars at `minutes` per bar, each stamped at its end (09:35 .. 16:00 for 5 minutes)."
    def make(v, d):
        b = resample_bars(load_bars(pd.DataFrame({"timestamp": v.ts, **_ohlcv(v)})), f"{minutes}min")
        p = d / f"end{minutes}.csv"
        ts = (b.index + pd.Timedelta(minutes=minutes)).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        pd.DataFrame({"timestamp": ts, **_ohlcv(b)}).to_csv(p, index=False)
        return p
    return make

def _stamps(name, stamps, tz="UTC"):
    "A CSV with the given wall-clock times (ISO with offset) and valid constant prices."
    def make(v, d):
        ts = pd.DatetimeIndex(pd.to_datetime(stamps)).tz_localize(tz)
        p = d / name
        pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S%z"), "open": 10.0, "high": 10.5, "low": 9.5,
                      "close": 10.0, "volume": 100}).to_csv(p, index=False)
        return p
    return make

_weekend = pd.date_range("2024-07-06 09:30", periods=30, freq="1min").append(
    pd.date_range("2024-07-07 09:30", periods=30, freq="1min"))
_seconds = pd.date_range("2024-07-02 10:00", periods=120, freq="1s")

BAD = [
    ("missing_column", _write(_edit(no_volume), "no_volume.csv"), None, ["no_volume.csv", "missing column(s) volume"]),
    ("no_time_column", _write(_edit(no_time), "no_time.csv"), None, ["no_time.csv", "no timestamp column"]),
    ("non_numeric", _write(_edit(txt_close), "text_close.csv"), None,
     ["text_close.csv", "'close' has non-numeric", "line 12", "'abc'"]),
    ("nan_price", _write(_edit(nan_close), "nan_close.csv"), None, ["nan_close.csv", "'close' is missing", "line 12"]),
    ("zero_price", _write(_edit(zero_open), "zero_open.csv"), None,
     ["zero_open.csv", "'open' is zero or negative", "line 12"]),
    ("negative_price", _write(_edit(neg_low), "neg_low.csv"), None,
     ["neg_low.csv", "'low' is zero or negative", "line 12"]),
    ("high_below_body", _write(_edit(high_below), "high.csv"), None,
     ["high.csv", "high < max(open, close)", "1 row(s)", "line 12"]),
    ("low_above_body", _write(_edit(low_above), "low.csv"), None, ["low.csv", "low > min(open, close)", "line 12"]),
    ("negative_volume", _write(_edit(neg_volume), "neg_vol.csv"), None,
     ["neg_vol.csv", "'volume' is negative", "line 12", "volume=-5"]),
    ("nan_volume", _write(_edit(nan_volume), "nan_vol.csv"), None, ["nan_vol.csv", "'volume' is missing", "line 12"]),
    ("duplicate_timestamps", _write(_edit(dup_ts), "dup.csv"), None,
     ["dup.csv", "duplicate timestamps", "line 12", "line 13"]),
    ("unsorted", _write(_edit(unsorted), "unsorted.csv"), None, ["unsorted.csv", "not sorted", "line 13", "line 12"]),
    ("naive_without_tz", _write(_edit(naive), "naive.csv"), None, ["naive.csv", "without a time zone", "tz="]),
    ("unparseable_time", _write(_edit(bad_time), "bad_time.csv"), None,
     ["bad_time.csv", "not timestamps", "line 12", "yesterday"]),
    ("mixed_offsets", _write(_edit(mixed_offset), "mixed.csv"), None,
     ["mixed.csv", "mixes timestamps with and without", "line 12"]),
    ("ambiguous_columns", _write(_edit(two_closes), "two_closes.csv"), None,
     ["two_closes.csv", "'close' (column 5) and 'Close' (column 7) both mean 'close'"]),
    ("header_only", _write(_edit(header_only), "header.csv"), None, ["header.csv", "no data rows"]),
    ("no_rth_bars", _write(_edit(daily_at_midnight), "daily.csv"), None,
     ["daily.csv", "no bar falls in NYSE regular hours"]),
    ("implausible_epoch", _write(_edit(yyyymmdd), "yyyymmdd.csv"), None, ["yyyymmdd.csv", "not plausible"]),
    ("unknown_tz", _write(_edit(naive), "naive2.csv"), "Mars/Olympus", ["naive2.csv", "cannot use tz='Mars/Olympus'"]),
    ("empty_file", _raw("empty.csv", b""), None, ["empty.csv", "empty file"]),
    ("blank_file", _raw("blank.csv", b"\n\n  \n"), None, ["blank.csv", "empty file"]),
    ("binary_csv", _raw("binary.csv", bytes(range(256)) * 8), None, ["binary.csv", "binary file"]),
    ("garbage_parquet", _raw("garbage.parquet", b"PAR1" + os.urandom(500)), None,
     ["garbage.parquet", "not a readable parquet file"]),
    ("text_as_parquet", _raw("text.parquet", b"timestamp,open\n1,2\n"), None,
     ["text.parquet", "not a readable parquet file"]),
    ("not_gzip", _raw("bars.csv.gz", b"timestamp,open,high\n1,2,3\n"), None,
     ["bars.csv.gz", "not a readable gzip file"]),
    ("latin1_csv", _raw("latin1.csv", LATIN1), None, ["latin1.csv", "not UTF-8"]),
    ("unknown_extension", _raw("bars.xlsx", b"PK\x03\x04"), None, ["bars.xlsx", "unsupported file type"]),
    ("missing_file", lambda v, d: d / "nowhere.parquet", None, ["nowhere.parquet", "file not found"]),
    ("folder", _folder, None, ["bars.csv", "is a folder; give a bars file"]),
    # wrongly accepted before: a duplicated header name, day-first or two-digit-year dates, bar-end stamps
    ("duplicate_close_csv", _write(_edit(dup_close), "dup_close.csv"), None,
     ["dup_close.csv", "'close' (column 5) and 'close' (column 6) both mean 'close'", "keep one"]),
    ("duplicate_close_parquet", _dup_parquet, None,
     ["dup_close.parquet", "'close' (column 5) and 'close' (column 6) both mean 'close'"]),
    ("day_first_dotted", _write(_edit(_dates("%d.%m.%y %H:%M")), "dotted.csv"), TZ,
     ["dotted.csv", "'02.07.24 08:15' (line 2)", "not ISO", "date_format="]),
    ("day_first_slash", _write(_edit(_dates("%d/%m/%Y %H:%M:%S")), "slash.csv"), TZ, ["slash.csv", "date_format="]),
    ("day_first_dash", _write(_edit(_dates("%d-%m-%y %H:%M")), "dash.csv"), TZ, ["dash.csv", "date_format="]),
    ("two_digit_year_first", _write(_edit(_dates("%y-%m-%d %H:%M")), "yymmdd.csv"), TZ,
     ["yymmdd.csv", "'24-07-02 08:15'", "date_format="]),
    ("month_first_slash", _write(_edit(_dates("%m/%d/%Y %H:%M")), "us.csv"), TZ, ["us.csv", "date_format="]),
    ("day_first_late_july", _late_july, TZ, ["late_july.csv", "'12/07/2024 09:30'", "date_format="]),
    ("end_stamped_5min", _end_stamped(5), None, ["end5.csv", "bar end", "09:35", "stamp='end'"]),
    ("end_stamped_1min", _end_stamped(1), None, ["end1.csv", "bar end", "09:31", "stamp='end'"]),
    # crashed before (IndexError)
    ("weekend_only", _stamps("weekend.csv", _weekend, TZ), None,
     ["weekend.csv", "no timestamp falls on an NYSE session"]),
    # clear but anonymous before: bar_minutes did not name the file
    ("daily_bars_at_open", _stamps("daily_open.csv", ["2024-07-01 09:30", "2024-07-02 09:30", "2024-07-03 09:30"], TZ),
     None, ["daily_open.csv", "no two bars fall on the same day", "daily bars"]),
    ("one_second_bars", _stamps("seconds.csv", _seconds, TZ), None, ["seconds.csv", "1 s apart"]),
    ("single_row", _stamps("one_row.csv", ["2024-07-02 10:00"], TZ), None, ["one_row.csv", "only one bar"]),
    ("before_calendar", _stamps("y1985.csv", ["1985-07-02 10:00", "1985-07-02 10:01"], TZ), None,
     ["y1985.csv", "outside the NYSE calendar"]),
    ("after_calendar", _stamps("y2095.csv", ["2095-07-05 10:00", "2095-07-05 10:01"], TZ), None,
     ["y2095.csv", "outside the NYSE calendar"]),
]


def test_corpus_is_large():
    assert len(BAD) >= 15


def test_corpus_ids_unique():
    assert len({b[0] for b in BAD}) == len(BAD)


@pytest.mark.parametrize("make,tz,parts", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_raises_clear_error(make, tz, parts, base, tmp_path):
    src = make(_vendor(base), tmp_path)
    with pytest.raises(DataError) as info:
        load_bars(src, tz=tz)
    msg = str(info.value)
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"
    err = info.value
    leaks = err.__cause__ is not None or (err.__context__ is not None and not err.__suppress_context__)
    assert not leaks, "a library traceback leaks through"
    assert isinstance(err, ValueError) and "\n" not in msg


def test_bad_frame_input():
    with pytest.raises(DataError, match="expected a file path or a DataFrame"):
        load_bars(42)
    df = pd.DataFrame({"timestamp": pd.date_range("2024-07-02 09:30", periods=3, freq="1min", tz=TZ),
                       "open": [1.0, 1, 1], "high": [1.0, 1, 1], "low": [1.0, 1, 1], "close": [1.0, 1, 1],
                       "volume": [1, -1, 1]})
    with pytest.raises(DataError, match=r"<DataFrame>: column 'volume' is negative in 1 row\(s\), first: row 1"):
        load_bars(df)
    dup = df.assign(volume=1)
    dup.insert(4, "low", dup["low"], allow_duplicates=True)
    with pytest.raises(DataError, match=r"<DataFrame>: 'low' \(column 4\) and 'low' \(column 5\) both mean 'low'"):
        load_bars(dup)


def test_bar_minutes_names_the_source():
    day = pd.DatetimeIndex(pd.to_datetime(["2024-07-01 09:30", "2024-07-02 09:30"]).tz_localize(TZ), name="timestamp")
    f = pd.DataFrame({c: 1.0 for c in OHLCV}, index=day)
    f.attrs["source"] = "daily_vendor.parquet"
    with pytest.raises(DataError, match=r"^daily_vendor.parquet: no two bars fall on the same day"):
        bar_minutes(f)
    with pytest.raises(DataError, match=r"^my.csv: only one bar"):
        bar_minutes(f.iloc[:1], name="my.csv")
    with pytest.raises(DataError, match=r"^bar_minutes: no two bars"):
        bar_minutes(day)  # an index carries no source


def test_date_format_is_used_and_checked(base, tmp_path):
    v = _vendor(base)
    p = tmp_path / "us.csv"
    pd.DataFrame({"timestamp": _wall(v, TZ).dt.strftime("%m/%d/%Y %H:%M"), **_ohlcv(v)}).to_csv(p, index=False)
    pd.testing.assert_frame_equal(load_bars(p, tz=TZ, date_format="%m/%d/%Y %H:%M"), base, check_freq=False)
    with pytest.raises(DataError, match=r"us.csv: .*not timestamps in the format '%d.%m.%Y %H:%M'.*line 2"):
        load_bars(p, tz=TZ, date_format="%d.%m.%Y %H:%M")
    with pytest.raises(DataError, match=r"'%m/%d/%Y %H:%M'"):  # the hint names the format that reads the file
        load_bars(p, tz=TZ)
    with pytest.raises(DataError, match=r"stamp must be 'start' or 'end'"):
        load_bars(p, tz=TZ, date_format="%m/%d/%Y %H:%M", stamp="middle")


def test_end_stamp_check_leaves_start_stamped_files_alone(base, tmp_path):
    "A start-stamped file with a 16:00 closing print (as EODHD's) is not end-stamped; stamp='end' on it is refused."
    v = _vendor(base)  # has a 16:00 print on 2024-07-03 and bars from 09:30
    pd.testing.assert_frame_equal(load_bars(pd.DataFrame({"timestamp": v.ts, **_ohlcv(v)})), base, check_freq=False)
    with pytest.raises(DataError, match=r"<DataFrame>: stamp='end' but .* start"):
        load_bars(pd.DataFrame({"timestamp": v.ts, **_ohlcv(v)}), stamp="end")


def _spliced(tmp_path, factor: float) -> Path:
    "Six weeks of 1-minute synthetic bars whose volume is divided by `factor` from 2024-07-01 on."
    b = synthetic_bars("2024-05-20", "2024-07-12", freq="1min", seed=4)
    late = b.index >= pd.Timestamp("2024-07-01", tz=TZ)
    b.loc[late, "volume"] = np.maximum(np.round(b.loc[late, "volume"] / factor), 1.0)
    p = tmp_path / f"spliced_{factor:g}.parquet"
    b.to_parquet(p)
    return p


def test_volume_splice_warns_and_loads(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="ilmarket"):
        got = load_bars(_spliced(tmp_path, 50))
    assert got.index.normalize().nunique() == len(coverage(got).days)  # loaded, nothing dropped
    warn = [r.getMessage() for r in caplog.records if "median bar volume" in r.getMessage()]
    assert len(warn) == 1 and "spliced_50.parquet" in warn[0] and "2024-07-01" in warn[0], caplog.text
    ch = volume_level_changes(got)
    assert ch.index.strftime("%Y-%m-%d").tolist() == ["2024-07-01"]
    clean = synthetic_bars("2024-05-20", "2024-07-12", freq="1min", seed=4)
    med = clean["volume"].groupby(clean.index.normalize().tz_localize(None)).median()
    expected = med["2024-07-01"] / 50 / med[:"2024-06-28"].iloc[-20:].median()  # the 50x drop on that day's own level
    assert abs(ch["ratio"].iloc[0] / expected - 1) < 1e-3  # volumes are rounded to whole shares after the division
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ilmarket"):
        load_bars(_spliced(tmp_path, 3))  # a vendor change of 3x (S3 vs S1 is 1.19x): below the factor
    assert "median bar volume" not in caplog.text
    assert volume_level_changes(got, factor=100.0).empty


def test_resample_matches_manual(base):
    r = resample_bars(base, "5min")
    assert len(r) == 78 + 42 and r.attrs["freq"] == "5min" and bar_minutes(r) == 5
    manual = base.loc["2024-07-02 09:35":"2024-07-02 09:39"]
    assert r.loc[pd.Timestamp("2024-07-02 09:35", tz=TZ)].tolist() == [
        manual.open.iloc[0], manual.high.max(), manual.low.min(), manual.close.iloc[-1], manual.volume.sum()]
    r60 = resample_bars(base, "60min")  # session-anchored: 09:30, 10:30, …, 15:30 (a 30-minute last bin)
    hours = ["09:30", "10:30", "11:30", "12:30", "13:30", "14:30", "15:30"]
    assert r60.loc["2024-07-02"].index.strftime("%H:%M").tolist() == hours


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
    assert "median bar volume" not in caplog.text  # three vendors spliced, none 10x apart
    assert volume_level_changes(one).empty and volume_level_changes(five).empty
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

def test_resolve_data_path(tmp_path, monkeypatch, base):
    monkeypatch.delenv("ILMARKET_DATA", raising=False)
    root = tmp_path / "proj"
    assert resolve_data_path(root=root) == (None, "synthetic")
    raw = root / "data" / "raw"
    (raw / "a_dataset.parquet").mkdir(parents=True)  # a folder, a note and an unknown type are not bars files
    (raw / "README.md").write_text("my bars")
    (raw / "0.xlsx").write_bytes(b"PK")
    assert resolve_data_path(root=root) == (None, "synthetic")
    for name in ("c.csv.gz", "B.PQ"):
        (raw / name).write_bytes(b"x")
    assert resolve_data_path(root=root) == ((raw / "B.PQ").resolve(), "data/raw")  # the first by name, any case
    f, _ = w_iso_utc_offset(_vendor(base), tmp_path)
    monkeypatch.setenv("ILMARKET_DATA", str(f))
    assert resolve_data_path(root=root) == (f.resolve(), "ILMARKET_DATA")
    assert resolve_data_path(str(raw / "c.csv.gz"), root=root) == ((raw / "c.csv.gz").resolve(), "argument")
    monkeypatch.setenv("ILMARKET_DATA", str(tmp_path / "gone.csv"))
    with pytest.raises(DataError, match=r"gone.csv: file not found \(named by \$ILMARKET_DATA\)"):
        resolve_data_path(root=root)
    with pytest.raises(DataError, match=r"nowhere.parquet: file not found$"):
        resolve_data_path(tmp_path / "nowhere.parquet")
    with pytest.raises(DataError, match=r"raw: is a folder; give a bars file \(.parquet, .pq, .csv or .csv.gz\)"):
        resolve_data_path(raw)
    with pytest.raises(DataError, match=r"0.xlsx: unsupported file type"):
        resolve_data_path(raw / "0.xlsx")


def test_default_bars_order(tmp_path, monkeypatch, base, caplog):
    from ilmarket.core import get_config
    from ilmarket.data import default_bars
    monkeypatch.setenv("ILMARKET_HOME", str(tmp_path))  # a project root without data/raw/
    monkeypatch.delenv("ILMARKET_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match=r"extrema file not found: .*segments\.csv"):
        default_bars(get_config("quick"))  # the synthetic market follows Table 6, which this root lacks
    (tmp_path / "data").mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "data" / "segments.csv", tmp_path / "data" / "segments.csv")
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
    with pytest.raises(DataError, match="is a folder; give a bars file"):
        default_bars(raw)


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

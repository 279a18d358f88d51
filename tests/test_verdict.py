"""The verdict protocol (nbs/09a_verdict): interval coverage on known distributions, Holm by hand, the IQM and the
probability of improvement against direct computations, the refusals of bad input, and the round trip of the
runs table."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ilmarket.verdict import (DO_NOTHING, RUNS_KEYS, VERDICTS, Claim, bootstrap_interval, bootstrap_pvalue,
                              check_runs, compare_pair, deflated_sharpe, evaluate_claims, holm_adjust, iqm,
                              load_runs, make_bootstrap_weights, make_synthetic_runs, pooled_moments,
                              prob_improvement, save_runs, tidy_runs, variance_components, weighted_iqm,
                              weighted_mean)


def _mean_interval(d: np.ndarray, rng: np.random.Generator, n_boot: int = 1000) -> tuple[float, float]:
    "The verdict's interval for the mean of a seeds × segments matrix (crossed scheme, expanded)."
    w = make_bootstrap_weights(*d.shape, n_boot, rng)
    return bootstrap_interval(weighted_mean(d.ravel(), w.reshape(n_boot, -1)), 0.05, variance_components(d)["df"])


def _coverage(draw, reps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = [lo <= 0 <= hi for lo, hi in (_mean_interval(draw(rng), rng) for _ in range(reps))]
    return float(np.mean(hits))


def test_interval_covers_a_normal_two_level_mean_about_95_percent():
    # crossed random effects, true mean 0: seed, segment and interaction variance all present
    draw = lambda rng: (rng.standard_normal((8, 1)) + rng.standard_normal((1, 10))
                        + rng.standard_normal((8, 10)))
    cov = _coverage(draw, reps=300, seed=0)
    assert 0.91 <= cov <= 0.99, cov


def test_interval_covers_a_skewed_one_level_mean_about_95_percent():
    # one seed, 20 segments, exponential returns centred on their true mean
    draw = lambda rng: rng.exponential(1.0, (1, 20)) - 1.0
    cov = _coverage(draw, reps=300, seed=1)
    assert 0.89 <= cov <= 0.99, cov


def test_nested_scheme_is_too_narrow_when_segments_dominate():
    # the literal "segments within each resampled seed" divides the segment variance by S·J instead of J
    rng = np.random.default_rng(2)
    d = np.tile(rng.normal(0, 1, 12), (10, 1))  # seed-free: only the segments vary
    sd = {s: (weighted_mean(d.ravel(), make_bootstrap_weights(10, 12, 4000, rng, s).reshape(4000, -1))).std()
          for s in ("crossed", "nested")}
    assert sd["crossed"] / sd["nested"] == pytest.approx(math.sqrt(10), rel=0.15)


def test_holm_against_a_hand_computed_example():
    # sorted 0.005, 0.01, 0.03, 0.04 → ×4, ×3, ×2, ×1 = 0.02, 0.03, 0.06, 0.04 → running max 0.02, 0.03, 0.06, 0.06
    np.testing.assert_allclose(holm_adjust([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    out = holm_adjust([0.2, np.nan, 0.01])  # NaN is not in the family: m = 2
    np.testing.assert_allclose(out[[0, 2]], [0.2, 0.02], rtol=1e-12)
    assert np.isnan(out[1])


def test_iqm_against_direct_computation():
    x = np.random.default_rng(3).lognormal(0, 1, 40)
    assert iqm(x) == pytest.approx(stats.trim_mean(x, 0.25), rel=1e-12)
    s = np.sort(x)
    assert iqm(x) == pytest.approx(s[10:30].mean(), rel=1e-12)  # the middle 20 of 40, by hand
    y = x[:11]  # not a multiple of 4: the quartile values count in part, as if every value were there 4 times
    assert iqm(y) == pytest.approx(stats.trim_mean(np.repeat(y, 4), 0.25), rel=1e-12)
    counts = np.random.default_rng(4).integers(0, 5, 11)
    assert weighted_iqm(y, counts) == pytest.approx(iqm(np.repeat(y, counts)), rel=1e-12)


def test_probability_of_improvement_is_symmetric():
    rng = np.random.default_rng(5)
    x, y = rng.integers(0, 3, (4, 6)).astype(float), rng.integers(0, 3, (4, 6)).astype(float)  # many ties
    gt, lt = prob_improvement(x, y, ties=0.0), prob_improvement(y, x, ties=0.0)
    tie = prob_improvement(x, y, ties=1.0) - gt
    assert 0 < tie < 1
    assert gt + lt + tie == pytest.approx(1.0, rel=1e-12)
    assert prob_improvement(x, y) + prob_improvement(y, x) == pytest.approx(1.0, rel=1e-12)
    w = make_bootstrap_weights(4, 6, 300, rng)
    np.testing.assert_allclose(prob_improvement(x, y, w) + prob_improvement(y, x, w), 1.0, rtol=1e-12)
    # by hand: per segment, the share of (seed of x, seed of y) pairs with x ahead, ties ½, then the mean
    hand = np.mean([np.mean([[(a > b) + 0.5 * (a == b) for b in y[:, j]] for a in x[:, j]]) for j in range(6)])
    assert prob_improvement(x, y) == pytest.approx(hand, rel=1e-12)


def test_pvalue_and_interval_agree():
    theta = np.random.default_rng(6).normal(0.2, 0.1, 20_000)
    for df in (np.inf, 9.0):
        lo, hi = bootstrap_interval(theta, 0.05, df)
        assert (bootstrap_pvalue(theta, df) < 0.05) == (not lo <= 0 <= hi)


def test_protocol_finds_a_known_effect_and_is_deterministic():
    runs = tidy_runs(make_synthetic_runs(np.random.default_rng(7), effect=6.0), fee=0.005)
    claims = [Claim("Final RL return > RL Baseline", "Final RL", "RL Baseline"),
              Claim("RL Baseline return > Final RL", "RL Baseline", "Final RL")]
    out = evaluate_claims(runs, claims, np.random.default_rng(0), n_boot=2000)
    assert out["verdict"].tolist() == ["holds", "does not hold"]
    pd.testing.assert_frame_equal(out, evaluate_claims(runs, claims, np.random.default_rng(0), n_boot=2000))


def test_one_seed_leaves_trained_agents_undecided():
    runs = tidy_runs(make_synthetic_runs(np.random.default_rng(8), effect=20.0, n_seeds=1), fee=0.005)
    out = evaluate_claims(runs, [Claim("x", "Final RL", "RL Baseline"), Claim("y", "Long-Only", DO_NOTHING)],
                          np.random.default_rng(0), n_boot=2000)
    assert out["verdict"].iloc[0] == "undecided at 95%" and "seed" in out["note"].iloc[0]
    assert np.isnan(out["p_holm"].iloc[0]) and out["verdict"].iloc[1] in VERDICTS


def test_compare_pair_sees_through_a_shared_segment_effect():
    rng = np.random.default_rng(9)
    b = rng.normal(0, 5, (1, 12)) + rng.normal(0, 0.5, (10, 12))
    a = b + 0.5 + rng.normal(0, 0.5, (10, 12))
    res = compare_pair(a, b, make_bootstrap_weights(10, 12, 4000, rng))
    assert res["ci_low"] > 0 and res["p"] < 0.01


def test_deflated_sharpe_on_the_published_example():
    # annual SR 2.5 over 1250 daily returns, skewness −3, kurtosis 10, 100 trials of annual SR variance ½
    d = deflated_sharpe(2.5 / math.sqrt(250), 1250, 100, math.sqrt(0.5 / 250), -3.0, 7.0)
    assert d["dsr"] == pytest.approx(0.9004, rel=1e-3)


def test_pooled_moments_equal_those_of_the_concatenated_returns():
    rng = np.random.default_rng(10)
    rets = [rng.standard_t(5, n) * 1e-3 + mu for n, mu in ((300, 1e-4), (500, -2e-4))]
    cells = pd.DataFrame([dict(n_bars=len(r), volatility=r.std(ddof=1), sharpe=r.mean() / r.std(ddof=1),
                               total_return=np.prod(1 + r) - 1, skewness=stats.skew(r),
                               excess_kurtosis=stats.kurtosis(r)) for r in rets])
    allr, pm = np.concatenate(rets), pooled_moments(cells)
    np.testing.assert_allclose([pm["mean"], pm["std"], pm["skewness"], pm["excess_kurtosis"]],
                               [allr.mean(), allr.std(ddof=1), stats.skew(allr), stats.kurtosis(allr)], rtol=1e-9)


def _runs() -> pd.DataFrame:
    return make_synthetic_runs(np.random.default_rng(11), n_seeds=2, n_segments=6)


@pytest.mark.parametrize("bad, message", [
    (lambda r: r.drop(columns=["turnover"]), "lacks column(s) ['turnover']"),
    (lambda r: r.assign(sharpe=np.where(r.index == 3, np.inf, r["sharpe"])), "'sharpe' holds inf at row 3"),
    (lambda r: r.assign(strategy=np.where(r.index == 0, None, r["strategy"])), "'strategy' is empty at row 0"),
    (lambda r: r.assign(seed=r["seed"] + 0.5), "an integer is required"),
    (lambda r: r.assign(final_value=-1.0), "'final_value' must be > 0"),
    (lambda r: r.assign(max_drawdown=0.2), "'max_drawdown' must be in [−1, 0]"),
    (lambda r: r.assign(turnover=-1.0), "'turnover' must be ≥ 0"),
    (lambda r: pd.concat([r, r.iloc[[5]]]), "two rows share the keys"),
    (lambda r: r.drop(index=[0]), "strategy 'Final RL' has 11 of the 12"),
    (lambda r: r.assign(regime=np.where(r.index == 0, "crash", r["regime"])), "more than one regime"),
    (lambda r: r.iloc[:0], "no rows"),
])
def test_bad_runs_are_refused_with_the_reason(bad, message):
    with pytest.raises(ValueError) as e:
        check_runs(bad(_runs()))
    assert message in str(e.value)


def test_other_bad_input():
    with pytest.raises(TypeError, match="pandas DataFrame"):
        check_runs(_runs().to_dict())
    with pytest.raises(ValueError, match="'crossed' or 'nested'"):
        make_bootstrap_weights(2, 3, 10, np.random.default_rng(0), "pairs")
    with pytest.raises(ValueError, match="fee must be in"):
        tidy_runs(_runs(), fee=1.5)
    with pytest.raises(ValueError, match="already has a 'Do-Nothing'"):
        tidy_runs(tidy_runs(_runs(), fee=0.005), fee=0.005)
    with pytest.raises(ValueError, match="no rows for strategy 'Nobody'"):
        evaluate_claims(tidy_runs(_runs(), 0.005), [Claim("x", "Nobody", "Long-Only")], np.random.default_rng(0))
    with pytest.raises(ValueError, match="same .seeds, segments. shape"):
        prob_improvement(np.zeros((2, 3)), np.zeros((3, 3)))


def test_runs_table_round_trip(tmp_path):
    runs = _runs().assign(fee_paid=123.25, skewness=0.1, excess_kurtosis=np.nan)
    save_runs(runs, tmp_path, source="synthetic")
    back = load_runs(tmp_path)
    assert back.attrs["source"] == "synthetic"
    want = check_runs(runs)
    pd.testing.assert_frame_equal(back[want.columns], want, check_exact=True)  # 17 digits: the same floats
    assert list(back[list(RUNS_KEYS)].columns) == list(RUNS_KEYS)
    (tmp_path / "tables" / "backtest_runs.csv").write_text("mode,strategy\nstatic,x\n")
    with pytest.raises(ValueError, match="lacks column"):
        load_runs(tmp_path)
    with pytest.raises(FileNotFoundError, match="no runs table"):
        load_runs(tmp_path / "elsewhere")

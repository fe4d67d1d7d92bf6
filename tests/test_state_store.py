"""The detector-state store: round trip, the continue-or-redo rule, atomic publication."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from odc.geo.geobox import GeoBox

from kpgeo import state_store
from kpgeo.change import ChangeParams, DetectorState
from kpgeo.change._state import F_FIELDS, M_FIELDS

GBOX = GeoBox.from_bbox((500000, 400000, 500700, 400500), crs="EPSG:32634", resolution=10)


def _acq(i, digest="d"):
    return {"time": f"2020-01-{i + 1:02d}T10:00:00Z", "key": [f"2020-01-{i + 1:02d}", [1e-4]],
            "items": [f"item-{i}"], "digest": f"{digest}{i}"}


def _meta(n=3, **kw):
    base = state_store.StateMeta(
        grid=state_store.grid_record(GBOX), block=32, pad=(5, 7),
        settings=state_store.settings_digest(params=ChangeParams(), bands=("red", "nir"),
                                             scheme="scl", watched_wkb=b"zone"),
        acquisitions=[_acq(i) for i in range(n)], regions=["z", "z:ring"],
        decision=state_store.decision_digest())
    return dataclasses.replace(base, **kw)


def _random_store(tmp_path, meta, *, seed):
    """A new (uncommitted) store of random block states; returns it and window -> state."""
    from kpgeo.stream import plan_windows

    tmp = state_store.create_store(tmp_path, meta, GBOX)
    rng = np.random.default_rng(seed)
    states = {}
    for window in plan_windows(GBOX.shape, meta.block, meta.pad):
        y0, y1, x0, x1 = window
        st = DetectorState.new((y1 - y0, x1 - x0))
        st.fstate[:] = rng.normal(size=st.fstate.shape).astype("float32")
        st.mstate[:] = rng.integers(0, 2**31 - 1, size=st.mstate.shape, dtype="int32")
        state_store.write_state(tmp, meta, window, st)
        states[window] = st
    return tmp, states


def test_state_round_trip_through_the_store(tmp_path):
    """Blocks written into their chunks read back bit for bit, on the padded store grid."""
    meta = _meta()
    tmp, states = _random_store(tmp_path, meta, seed=0)
    assert tmp.name.startswith(".state.zarr.") and ".kpgeo.tmp" in tmp.name
    meta.t_last = 18262.4
    state_store.finish_store(tmp, meta)
    final = state_store.commit(tmp, tmp_path)
    assert final == tmp_path / "state.zarr" and not tmp.exists()
    back, why = state_store.read_meta(final)
    assert why is None and back == meta
    for window, st in states.items():
        got = state_store.read_state(final, back, window)
        np.testing.assert_array_equal(got.fstate, st.fstate)
        np.testing.assert_array_equal(got.mstate, st.mstate)
        assert got.t_last == pytest.approx(18262.4)
    # a window that is not a block reads the same pixels too
    got = state_store.read_state(final, back, (3, 40, 10, 55))
    whole = np.zeros((*GBOX.shape, states[next(iter(states))].fstate.shape[-1]), "float32")
    for (y0, y1, x0, x1), st in states.items():
        whole[y0:y1, x0:x1] = st.fstate
    np.testing.assert_array_equal(got.fstate, whole[3:40, 10:55])


def test_the_store_is_readable_with_xarray(tmp_path):
    """The chunk files the block tasks write are the Zarr chunks xarray / zarr read."""
    import xarray as xr

    meta = _meta(fields=state_store.stored_fields(ChangeParams()))
    tmp, states = _random_store(tmp_path, meta, seed=1)
    state_store.commit(tmp, tmp_path)
    ds = xr.open_zarr(tmp_path / "state.zarr", consolidated=False)
    assert ds["fstate"].dims == ("y", "x", "f_field")
    assert ds.attrs["f_fields"] == meta.fields["fstate"] and ds.attrs["f_fields"][0] == "n_clear"
    assert ds.attrs["kpgeo_state"]["block"] == 32
    # padded at the top and left so block edges are chunk edges
    assert ds.sizes["y"] % 32 == 0 and float(ds["x"][7]) == pytest.approx(500005.0)
    f_idx = [F_FIELDS.index(n) for n in meta.fields["fstate"]]
    fstate, mstate = ds["fstate"].values, ds["mstate"].values
    py, px = meta.pad
    for (y0, y1, x0, x1), st in states.items():
        win = np.s_[y0 + py:y1 + py, x0 + px:x1 + px]
        np.testing.assert_array_equal(fstate[win], st.fstate[..., f_idx])
        np.testing.assert_array_equal(mstate[win], st.mstate)


def test_fields_the_parameters_never_use_are_not_stored_and_read_back_initial(tmp_path):
    params = ChangeParams(baseline_obs=3)
    fields = state_store.stored_fields(params)
    dropped = [n for n in F_FIELDS if n not in fields["fstate"]]
    assert dropped == [f"buf_{k}{i}" for k in ("ndvi", "wi", "cls") for i in range(3, 8)]
    assert fields["mstate"] == list(M_FIELDS)
    meta = _meta(fields=fields)
    tmp = state_store.create_store(tmp_path, meta, GBOX)
    window = (0, 27, 0, 25)  # the first block (pad 5, 7)
    st = DetectorState.new((27, 25))
    st.fstate[:] = 7.0
    state_store.write_state(tmp, meta, window, st)
    got = state_store.read_state(tmp, meta, window)
    fresh = DetectorState.new((27, 25))
    for i, name in enumerate(F_FIELDS):
        want = fresh.fstate[..., i] if name in dropped else st.fstate[..., i]
        np.testing.assert_array_equal(got.fstate[..., i], want, err_msg=name)
    np.testing.assert_array_equal(got.mstate, st.mstate)


@pytest.mark.parametrize("baseline_obs", [2, 4, 8])
def test_the_decision_never_writes_the_fields_that_are_not_stored(baseline_obs):
    """Fed noisy, gappy observations, the unstored fields keep their initial values."""
    from kpgeo.change._state import persisted_fields

    params = ChangeParams(baseline_obs=baseline_obs, min_clear_obs=max(6, baseline_obs))
    rng = np.random.default_rng(baseline_obs)
    n, t = 3000, 60
    bands = _noisy_bands(rng, n, t)
    st = DetectorState.new((n,))
    st.update(**bands, tdays=18000.0 + 5.0 * np.arange(t), params=params)
    assert (st.fstate[:, F_FIELDS.index("n_base")] >= baseline_obs).mean() > 0.9
    kept = set(persisted_fields(params)[0])
    fresh = DetectorState.new((n,))
    for i, name in enumerate(F_FIELDS):
        if i not in kept:
            np.testing.assert_array_equal(st.fstate[:, i], fresh.fstate[:, i], err_msg=name)


def _noisy_bands(rng, n, t):
    bands = {b: rng.uniform(0.01, 0.5, (n, t)).astype("float32")
             for b in ("red", "nir", "swir16", "green", "blue")}
    cloudy = rng.random((n, t)) < 0.3
    for v in bands.values():
        v[cloudy] = np.nan
    return bands


@pytest.mark.parametrize("baseline_obs", [2, 4])
def test_a_stored_state_without_its_spent_baseline_buffer_continues_the_same(tmp_path,
                                                                            baseline_obs):
    """Pixels with a formed baseline store their buffer as 0; fed on, nothing else differs."""
    from kpgeo.change._state import N_BASE, spent_buffer_fields

    params = ChangeParams(baseline_obs=baseline_obs)
    rng = np.random.default_rng(7)
    h, w, t0, t = 27, 25, baseline_obs + 2, 40
    st = DetectorState.new((h, w))
    days = 18000.0 + 5.0 * np.arange(t0 + t)
    first = {b: v.reshape(h, w, t0) for b, v in _noisy_bands(rng, h * w, t0).items()}
    st.update(**first, tdays=days[:t0], params=params)
    formed = st.fstate[..., N_BASE] >= baseline_obs
    assert formed.mean() > 0.1 and not formed.all()  # both kinds of pixels
    meta = _meta(fields=state_store.stored_fields(params))
    tmp = state_store.create_store(tmp_path, meta, GBOX)
    state_store.write_state(tmp, meta, (0, h, 0, w), st, params)
    back = state_store.read_state(tmp, meta, (0, h, 0, w))
    spent = spent_buffer_fields(params)
    assert (back.fstate[formed][:, spent] == 0).all()
    np.testing.assert_array_equal(back.fstate[~formed], st.fstate[~formed])
    later = {b: v.reshape(h, w, t) for b, v in _noisy_bands(rng, h * w, t).items()}
    for s in (st, back):
        s.update(**later, tdays=days[t0:], params=params)
    np.testing.assert_array_equal(back.outputs(params=params), st.outputs(params=params))
    others = np.setdiff1d(np.arange(len(F_FIELDS)), spent)
    np.testing.assert_array_equal(back.fstate[..., others], st.fstate[..., others])
    np.testing.assert_array_equal(back.mstate, st.mstate)


def test_a_missing_or_damaged_chunk_is_reported(tmp_path):
    meta = _meta()
    tmp = state_store.create_store(tmp_path, meta, GBOX)
    window = (0, 27, 0, 25)
    state_store.write_state(tmp, meta, window, DetectorState.new((27, 25)))
    chunk = tmp / "fstate" / "c" / "0" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-10])
    with pytest.raises(state_store.DamagedStateError, match="damaged"):
        state_store.read_state(tmp, meta, window)
    chunk.unlink()
    with pytest.raises(state_store.DamagedStateError, match="cannot be read"):
        state_store.read_state(tmp, meta, window)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"kpgeo": "0.0.1"}, "written by kpgeo 0.0.1"),
        ({"decision": "other"}, "detection code changed"),
        ({"settings": "other"}, "change parameters"),
        ({"grid": {"crs": "x", "transform": [], "shape": [1, 1]}}, "pixel grid changed"),
        ({"regions": ["z"]}, "coverage regions changed"),
        ({"fields": state_store.stored_fields(ChangeParams())}, "stored state fields changed"),
        ({"format": 1}, "store format 1"),
    ],
)
def test_a_state_of_other_settings_is_not_continued(change, why):
    n, reason = state_store.reuse(dataclasses.replace(_meta(), **change), _meta(5))
    assert n == 0 and why in reason


def test_new_dates_after_the_stored_ones_continue_it():
    assert state_store.reuse(_meta(3), _meta(5)) == (3, None)
    assert state_store.reuse(_meta(5), _meta(5)) == (5, None)
    assert state_store.reuse(None, _meta(5)) == (0, None)


def test_changed_or_inserted_or_removed_dates_redo_the_zone():
    current = _meta(5)
    replaced = _meta(3)
    replaced.acquisitions[1] = _acq(1, digest="new")
    n, why = state_store.reuse(replaced, current)
    assert n == 0 and "2020-01-02 was replaced" in why
    inserted = _meta(3)
    inserted.acquisitions[2] = dict(_acq(2), time="2020-01-03T11:00:00Z")
    n, why = state_store.reuse(inserted, current)
    assert n == 0 and "the dates changed" in why
    n, why = state_store.reuse(_meta(6), current)
    assert n == 0 and "no longer in the items" in why


def test_settings_digest_follows_what_the_state_depends_on():
    base = {"params": ChangeParams(), "bands": ("red", "nir"), "scheme": "scl",
            "watched_wkb": b"zone"}
    ref = state_store.settings_digest(**base)
    assert state_store.settings_digest(**base) == ref
    for key, value in (("params", ChangeParams(persistence=4)), ("bands", ("red",)),
                       ("scheme", "fmask"), ("watched_wkb", b"other")):
        assert state_store.settings_digest(**(base | {key: value})) != ref


def test_unreadable_store_gives_a_reason(tmp_path):
    (tmp_path / "state.zarr").mkdir()
    (tmp_path / "state.zarr" / "zarr.json").write_text("{")
    meta, why = state_store.read_meta(tmp_path / "state.zarr")
    assert meta is None and "unreadable" in why
    assert state_store.read_meta(tmp_path / "absent.zarr") == (None, None)


def test_commit_replaces_the_old_store_and_leaves_no_temporary_folder(tmp_path):
    first = state_store.create_store(tmp_path, _meta(2), GBOX)
    state_store.finish_store(first, _meta(2))
    state_store.commit(first, tmp_path)
    second = state_store.create_store(tmp_path, _meta(4), GBOX)
    state_store.finish_store(second, _meta(4))
    state_store.commit(second, tmp_path)
    meta, _ = state_store.read_meta(tmp_path / "state.zarr")
    assert len(meta.acquisitions) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["state.zarr"]


def test_a_killed_run_leaves_only_temporary_names_that_the_next_run_removes(tmp_path):
    from kpgeo.io import remove_temp_files

    state_store.commit(state_store.create_store(tmp_path, _meta(2), GBOX), tmp_path)
    state_store.create_store(tmp_path, _meta(3), GBOX)  # never finished nor committed
    assert len(list(tmp_path.iterdir())) == 2
    remove_temp_files(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["state.zarr"]

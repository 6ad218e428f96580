"""xarray (with netCDF-C) as the real client of the climate case's NetCDF files, for ClimateFileTests.fs.

  python3 climate_files.py check-truth PATH RUN N SAVE_EVERY SAVES FINE T IX IY OMEGA Q P
      reads a truth file Hybrid wrote (RUN: in-distribution or out-of-distribution; N cells per side; SAVES saves
      SAVE_EVERY apart; FINE cells of the fine grid) and checks its CF layout, coordinates, units and attributes, and
      that omega, q and P at time index T, x index IX, y index IY are OMEGA, Q and P (exactly: float32 values)
  python3 climate_files.py rewrite SRC DST
      writes the run of Hybrid's truth file SRC as another code would, to DST: NetCDF-4, float64, its own names
      (t, lat, lon; vorticity, hus, pr), dimension orders and variable order, coordinates in degrees and from 0
      (cell edges), time from 0, its own attributes
  python3 climate_files.py check-forecast PATH TRUTH N REGIONS LEADS SAVE_EVERY
      reads a forecast file Hybrid wrote and checks its layout, coordinates and attributes, that lead 0 is the
      truth file's state at each start, and that the regional precipitation adds up to the domain total of P
"""
import sys

import netCDF4
import numpy as np
import xarray as xr


def check_truth(path, run, n, save_every, saves, fine, t, ix, iy, omega, q, p):
    n, saves, fine, t, ix, iy = int(n), int(saves), int(fine), int(t), int(ix), int(iy)
    save_every = float(save_every)
    model = netCDF4.Dataset(path).data_model
    assert model == "NETCDF3_CLASSIC", model
    ds = xr.open_dataset(path)
    assert list(ds.data_vars) == ["omega", "q", "P"], list(ds.data_vars)
    for name in ["omega", "q", "P"]:
        v = ds[name]
        assert v.dims == ("time", "y", "x"), (name, v.dims)
        assert v.dtype == np.float32, (name, v.dtype)
        assert v.attrs["units"] == "1", (name, v.attrs)
        assert "non-dimensional" in v.attrs["long_name"], (name, v.attrs)
    assert ds["q"].attrs["standard_name"] == "specific_humidity", ds["q"].attrs
    assert "standard_name" not in ds["omega"].attrs and "standard_name" not in ds["P"].attrs
    assert "vorticity" in ds["omega"].attrs["long_name"], ds["omega"].attrs
    assert "precipitation" in ds["P"].attrs["long_name"], ds["P"].attrs
    centres = (np.arange(n) + 0.5) * 2 * np.pi / n
    for name, axis in [("x", "X"), ("y", "Y"), ("time", "T")]:
        c = ds[name]
        assert c.dims == (name,), (name, c.dims)
        assert c.dtype == np.float64, (name, c.dtype)
        assert c.attrs["units"] == "1" and c.attrs["axis"] == axis, (name, c.attrs)
        assert "non-dimensional" in c.attrs["long_name"], (name, c.attrs)
    np.testing.assert_allclose(ds["x"].values, centres, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ds["y"].values, centres, rtol=0, atol=1e-12)
    assert ds.sizes["time"] == saves, ds.sizes
    np.testing.assert_allclose(np.diff(ds["time"].values), save_every, rtol=1e-12)
    assert ds.attrs["Conventions"] == "CF-1.8", ds.attrs
    assert run in ds.attrs["title"], ds.attrs["title"]
    source = ds.attrs["source"]
    for text in ["model climate", f"cells {fine} x {fine}", "∂omega/∂t", "field psi diagnostic", run]:
        assert text in source, (text, source)
    assert "ClimateTruthFile.write" in ds.attrs["history"], ds.attrs["history"]
    # The model's tensors are [time, x, y]; the file's (time, y, x): IX and IY differ, so a transposed write fails.
    for name, expected in [("omega", omega), ("q", q), ("P", p)]:
        actual = float(ds[name].values[t, iy, ix])
        assert actual == float(expected), (name, actual, expected)
    print("ok")


def rewrite(src, dst):
    ds = xr.open_dataset(src).load()
    n = ds.sizes["x"]
    time = ds["time"].values
    out = xr.Dataset(
        {
            "pr": (("lon", "t", "lat"), ds["P"].transpose("x", "time", "y").values.astype("float64"),
                   {"units": "kg m-2", "long_name": "precipitation since the start"}),
            "hus": (("t", "lon", "lat"), ds["q"].transpose("time", "x", "y").values.astype("float64"),
                    {"units": "1", "standard_name": "specific_humidity"}),
            "vorticity": (("t", "lat", "lon"), ds["omega"].values.astype("float64"), {"units": "s-1"}),
        },
        coords={
            "lat": ("lat", -90.0 + 180.0 * np.arange(n) / n, {"units": "degrees_north"}),
            "lon": ("lon", 360.0 * np.arange(n) / n, {"units": "degrees_east"}),
            "t": ("t", time - time[0], {"units": "model time units"}),
        },
        attrs={"title": "a truth from another code", "institution": "elsewhere"},
    )
    out.to_netcdf(dst, format="NETCDF4")
    print("ok")


def check_forecast(path, truth, n, regions, leads, save_every):
    n, regions, leads, save_every = int(n), int(regions), int(leads), float(save_every)
    ds = xr.open_dataset(path)
    tr = xr.open_dataset(truth)
    for name in ["omega", "q", "P"]:
        assert ds[name].dims == ("start", "lead", "y", "x"), (name, ds[name].dims)
        assert ds[name].attrs["units"] == "1", (name, ds[name].attrs)
    assert ds["q"].attrs["standard_name"] == "specific_humidity", ds["q"].attrs
    assert ds["precipitation"].dims == ("start", "lead", "region_y", "region_x"), ds["precipitation"].dims
    assert ds.sizes["lead"] == leads + 1 and ds.sizes["region_x"] == regions, ds.sizes
    np.testing.assert_allclose(ds["lead"].values, save_every * np.arange(leads + 1), rtol=1e-12)
    np.testing.assert_allclose(ds["x"].values, tr["x"].values, rtol=0, atol=1e-12)
    edges = 2 * np.pi * np.arange(regions + 1) / regions
    assert ds["region_x"].attrs["bounds"] == "region_x_bounds", ds["region_x"].attrs
    np.testing.assert_allclose(ds["region_x_bounds"].values[:, 0], edges[:-1], atol=1e-12)
    np.testing.assert_allclose(ds["region_y_bounds"].values[:, 1], edges[1:], atol=1e-12)
    assert ds.attrs["Conventions"] == "CF-1.8", ds.attrs
    np.testing.assert_array_equal(ds["start"].values, tr["time"].values[ds["start_index"].values])
    for name in ["omega", "q", "P"]:
        np.testing.assert_array_equal(ds[name].values[:, 0], tr[name].values[ds["start_index"].values])
    cell = (2 * np.pi / n) ** 2
    total = (ds["P"] - ds["P"].isel(lead=0)).sum(["y", "x"]).values * cell
    summed = ds["precipitation"].sum(["region_y", "region_x"]).values
    np.testing.assert_allclose(summed, total, rtol=1e-5, atol=1e-7)
    print("ok")


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "check-truth":
        check_truth(*sys.argv[2:])
    elif command == "rewrite":
        rewrite(*sys.argv[2:])
    else:
        check_forecast(*sys.argv[2:])

"""A real NetCDF client for Hybrid.NetCdf's tests (xarray with the netCDF4 backend, i.e. netCDF-C).

  python3 netcdf_client.py check PATH MODEL   reads a file Hybrid wrote and checks it against the reference and
                                              its data model (NETCDF3_CLASSIC or NETCDF3_64BIT_OFFSET)
  python3 netcdf_client.py write NC4 NC3 REC  writes the reference as NetCDF-4, as NetCDF-3 classic, and as
                                              NetCDF-3 classic with an unlimited (record) time dimension

The reference dataset is the one of ClientTests.fs: time=2, lat=3, lon=4; tas(time, lat, lon) float32
250 + 0.5 i in K with _FillValue -9999 and value 5 missing; count(lat) int32 1, 2, 3; CF attributes.
"""
import sys

import netCDF4
import numpy as np
import xarray as xr


def reference():
    tas = (250.0 + 0.5 * np.arange(24)).astype("float32")
    tas[5] = np.nan
    ds = xr.Dataset(
        {
            "tas": (("time", "lat", "lon"), tas.reshape(2, 3, 4),
                    {"units": "K", "standard_name": "air_temperature", "long_name": "near-surface air temperature"}),
            "count": (("lat",), np.array([1, 2, 3], dtype="int32"), {"long_name": "stations"}),
        },
        coords={
            "time": ("time", np.array([0.0, 1.0]), {"units": "days since 2000-01-01"}),
            "lat": ("lat", np.array([-10.0, 0.0, 10.0]), {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", np.array([0.0, 90.0, 180.0, 270.0]), {"units": "degrees_east"}),
        },
        attrs={"title": "Hybrid NetCDF test", "Conventions": "CF-1.8", "version": 1.5},
    )
    ds["tas"].encoding["_FillValue"] = np.float32(-9999.0)
    return ds


def check(path, expected_model):
    model = netCDF4.Dataset(path).data_model
    assert model == expected_model, f"data model {model}, expected {expected_model}"
    ds = xr.open_dataset(path, decode_times=False)
    ref = reference()
    assert ds["tas"].dims == ("time", "lat", "lon"), ds["tas"].dims
    assert ds["tas"].dtype == np.float32, ds["tas"].dtype
    np.testing.assert_array_equal(ds["tas"].values, ref["tas"].values)
    assert ds["tas"].encoding["_FillValue"] == -9999.0, ds["tas"].encoding
    assert ds["count"].dtype == np.int32, ds["count"].dtype
    np.testing.assert_array_equal(ds["count"].values, [1, 2, 3])
    for name in ["time", "lat", "lon"]:
        np.testing.assert_array_equal(ds[name].values, ref[name].values)
        assert ds[name].attrs["units"] == ref[name].attrs["units"], (name, ds[name].attrs)
    for name in ["units", "standard_name", "long_name"]:
        assert ds["tas"].attrs[name] == ref["tas"].attrs[name], (name, ds["tas"].attrs)
    assert ds["lat"].attrs["standard_name"] == "latitude", ds["lat"].attrs
    assert ds.attrs == ref.attrs, ds.attrs
    print("ok")


def write(nc4, nc3, rec):
    ds = reference()
    ds.to_netcdf(nc4, format="NETCDF4")
    ds.to_netcdf(nc3, format="NETCDF3_CLASSIC")
    ds.to_netcdf(rec, format="NETCDF3_CLASSIC", unlimited_dims=["time"])
    print("ok")


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        write(sys.argv[2], sys.argv[3], sys.argv[4])

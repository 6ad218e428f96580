/// Hybrid.NetCdf against a real NetCDF client: xarray with netCDF-C (Debian's python3-xarray and
/// python3-netcdf4, which the build installs where missing) runs netcdf_client.py.
module Hybrid.NetCdf.Tests.ClientTests

open System
open System.Diagnostics
open System.IO
open Expecto
open Hybrid.Tests.XarrayClient
open Hybrid.NetCdf
open Hybrid.NetCdf.Tests.Reference

let private script = Path.Combine(AppContext.BaseDirectory, "netcdf_client.py")

let tests =
    testList "real client (xarray, netCDF-C)" [
        test "xarray reads what Hybrid wrote: values, coordinates, units and attributes" {
            withPython (fun python ->
                use file = new TempFile(".nc")
                NetCdf.write file.Path dataset
                let code, output = run python [ script; "check"; file.Path; "NETCDF3_CLASSIC" ]
                Expect.equal (code, output.Trim()) (0, "ok") "netcdf_client.py check")
        }

        test "xarray reads what Hybrid wrote as CDF-2 (64-bit offset)" {
            withPython (fun python ->
                use file = new TempFile(".nc")
                NetCdf.writeClassic 0L file.Path dataset
                let code, output = run python [ script; "check"; file.Path; "NETCDF3_64BIT_OFFSET" ]
                Expect.equal (code, output.Trim()) (0, "ok") "netcdf_client.py check")
        }

        test "Hybrid reads what xarray wrote as NetCDF-4, NetCDF-3 classic and NetCDF-3 with a record dimension" {
            withPython (fun python ->
                use nc4 = new TempFile(".nc")
                use nc3 = new TempFile(".nc")
                use records = new TempFile(".nc")
                let code, output = run python [ script; "write"; nc4.Path; nc3.Path; records.Path ]
                Expect.equal (code, output.Trim()) (0, "ok") "netcdf_client.py write"

                for file, what in [ nc4, "NetCDF-4"; nc3, "NetCDF-3"; records, "NetCDF-3 with records" ] do
                    try
                        check (NetCdf.read file.Path)
                    with :? AssertException as e ->
                        failtest $"{what}: {e.Message}")
        }
    ]

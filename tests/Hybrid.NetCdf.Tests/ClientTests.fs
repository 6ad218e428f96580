/// Hybrid.NetCdf against a real NetCDF client: xarray with netCDF-C (Debian's python3-xarray and
/// python3-netcdf4, which the build installs where missing) runs netcdf_client.py.
module Hybrid.NetCdf.Tests.ClientTests

open System
open System.Diagnostics
open System.IO
open Expecto
open Hybrid.NetCdf
open Hybrid.NetCdf.Tests.Reference

let private script = Path.Combine(AppContext.BaseDirectory, "netcdf_client.py")

/// Runs `python` with `arguments`; the exit code and what it printed.
let private run (python: string) (arguments: string list) =
    let start = ProcessStartInfo(python, arguments)
    start.RedirectStandardOutput <- true
    start.RedirectStandardError <- true

    try
        use p = Process.Start start
        let output = p.StandardOutput.ReadToEndAsync()
        let error = p.StandardError.ReadToEnd()
        p.WaitForExit()
        p.ExitCode, output.Result + error
    with :? ComponentModel.Win32Exception as e ->
        -1, e.Message

/// Debian's python3 first: the apt packages install into it, not into another python3 on the PATH.
let private python =
    lazy
        ([ "/usr/bin/python3"; "python3" ]
         |> List.tryFind (fun p -> fst (run p [ "-c"; "import xarray, netCDF4" ]) = 0))

let private withPython (body: string -> unit) =
    match python.Value with
    | Some p -> body p
    | None ->
        skiptest
            "no python3 with xarray and netCDF4 here: install them with 'apt-get install -y python3-xarray python3-netcdf4' (the build does on CI)"

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

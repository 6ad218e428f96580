/// A real NetCDF client for the tests: Debian's python3 with xarray and netCDF-C (python3-xarray, python3-netcdf4,
/// which CI installs where missing), run as a process; tests that need it are skipped with the install line without.
module Hybrid.Tests.XarrayClient

open System
open System.Diagnostics
open Expecto

/// Runs `python` with `arguments`; the exit code and what it printed (standard output, then standard error).
let run (python: string) (arguments: string list) : int * string =
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

/// `body` with the path of a python3 that imports xarray and netCDF4; the test is skipped (with the install line)
/// where there is none.
let withPython (body: string -> unit) : unit =
    match python.Value with
    | Some p -> body p
    | None ->
        skiptest
            "no python3 with xarray and netCDF4 here: install them with 'apt-get install -y python3-xarray python3-netcdf4' (the build does on CI)"

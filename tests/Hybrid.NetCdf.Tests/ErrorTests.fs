module Hybrid.NetCdf.Tests.ErrorTests

open System.IO
open Expecto
open Hybrid.NetCdf
open Hybrid.NetCdf.Tests.Reference

let private message (f: unit -> unit) =
    try
        f ()
        failtest "expected a NetCdfException"
        ""
    with :? NetCdfException as e ->
        e.Message

let tests =
    testList "errors" [
        test "a variable whose values do not fill its dimensions is refused with the counts and the fix" {
            use file = new TempFile(".nc")

            let bad =
                Dataset.empty
                |> Dataset.withDimension "lat" 3
                |> Dataset.withVariable {
                    Name = "t"
                    Dimensions = [ "lat" ]
                    Data = Float64 [| 1.0; 2.0 |]
                    Attributes = []
                }

            Expect.equal
                (message (fun () -> NetCdf.write file.Path bad))
                $"Cannot write '{file.Path}': variable 't' has 2 values, but its dimensions (lat=3) hold 3. Give it 3 values in C order (the last dimension varying fastest)."
                "message"
        }

        test "a variable over an undeclared dimension is refused with the declared ones" {
            use file = new TempFile(".nc")

            let bad =
                Dataset.empty
                |> Dataset.withDimension "lat" 1
                |> Dataset.withVariable {
                    Name = "t"
                    Dimensions = [ "lon" ]
                    Data = Float64 [| 1.0 |]
                    Attributes = []
                }

            Expect.equal
                (message (fun () -> NetCdf.write file.Path bad))
                $"Cannot write '{file.Path}': variable 't' is over dimension 'lon', which the dataset does not declare (it declares 'lat'). Add it with Dataset.withDimension \"lon\" <length>."
                "message"
        }

        test "a file that is not NetCDF is refused" {
            use file = new TempFile(".csv")
            File.WriteAllText(file.Path, "time,t\n0,1\n")

            Expect.equal
                (message (fun () -> NetCdf.read file.Path |> ignore))
                $"Cannot read '{file.Path}': it starts with neither \"CDF\" (NetCDF classic) nor the HDF5 signature (NetCDF-4), so it is not a NetCDF file. Check the path, or convert the file to NetCDF."
                "message"
        }

        test "a truncated classic file is refused with where it ends" {
            use file = new TempFile(".nc")
            NetCdf.write file.Path dataset
            let bytes = File.ReadAllBytes file.Path
            File.WriteAllBytes(file.Path, bytes[..19])

            Expect.equal
                (message (fun () -> NetCdf.read file.Path |> ignore))
                $"'{file.Path}' is not a valid NetCDF classic file: the file ends where 4 more bytes were expected (at byte 20). The file may be truncated or not NetCDF; check it with 'ncdump -h'."
                "message"
        }

        test "a CDF-5 file is refused with the conversion to use" {
            use file = new TempFile(".nc")
            File.WriteAllBytes(file.Path, [| byte 'C'; byte 'D'; byte 'F'; 5uy; 0uy; 0uy; 0uy; 0uy |])

            Expect.equal
                (message (fun () -> NetCdf.read file.Path |> ignore))
                $"'{file.Path}' is a CDF-5 (64-bit data) NetCDF file, which Hybrid.NetCdf does not read. Convert it with 'nccopy -k nc4 {file.Path} out.nc' (NetCDF-4) or 'nccopy -k 64-bit-offset'."
                "message"
        }

        test "an unknown variable name is answered with the names there are" {
            Expect.equal
                (message (fun () -> Dataset.variable "Tas" dataset |> ignore))
                "The dataset has no variable 'Tas'; it has 'time', 'lat', 'lon', 'tas', 'count'. Use one of those names (they are case-sensitive)."
                "message"
        }

        test "an HDF5 file whose variables have no dimension names is refused as plain HDF5" {
            use file = new TempFile(".h5")
            let h5 = PureHDF.H5File()
            h5["t"] <- PureHDF.H5Dataset([| 1.0; 2.0; 3.0 |])
            h5.Write file.Path

            Expect.equal
                (message (fun () -> NetCdf.read file.Path |> ignore))
                $"'{file.Path}': variable 't' has 1 dimensions but no dimension names (no DIMENSION_LIST): it is plain HDF5, not NetCDF-4. Write the file with netCDF-C, xarray or h5netcdf so that its dimensions are named."
                "message"
        }
    ]

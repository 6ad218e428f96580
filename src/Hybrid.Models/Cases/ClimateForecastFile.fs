/// A climate model's forecasts as a CF-1.8 NetCDF file, for the report and users' tools (xarray, CDO, Panoply): the
/// fields ω, q and P at every saved interval of each forecast window, and the regional precipitation of each window,
/// in the layout of the truth files (`ClimateTruthFile`: non-dimensional, units "1", (…, y, x) order).
[<RequireQualifiedAccess>]
module Hybrid.Models.Cases.ClimateForecastFile

open System
open System.Globalization
open TorchSharp
open Hybrid.NetCdf

let private num (v: float) =
    v.ToString("R", CultureInfo.InvariantCulture)

/// Values of `t` in C order, in its precision (float64 stays float64, anything else becomes float32).
let private values (t: torch.Tensor) : VariableData =
    let t = t.contiguous().cpu ()

    if t.dtype = torch.ScalarType.Float64 then
        Float64(t.data<float>().ToArray())
    else
        Float32(t.to_type(torch.ScalarType.Float32).data<float32>().ToArray())

let private coordinate (name: string) (axis: string option) (longName: string) (data: float[]) : Variable = {
    Name = name
    Dimensions = [ name ]
    Data = Float64 data
    Attributes =
        [ "units", Text "1" ]
        @ (axis |> Option.map (fun a -> "axis", Text a) |> Option.toList)
        @ [ "long_name", Text longName ]
}

/// Writes the forecasts of `m` from the states of the truth's run `run` at the save indices `starts`, over
/// `intervals` saved intervals, to the NetCDF classic file `path`; `split` says which windows they are (e.g. "test
/// block"). Dimensions: start (one per window), lead (0, 1, …, `intervals` saved intervals), y and x (the models'
/// cell centres in [0, 2π)), region_y and region_x (`s.Regions` per side) and nv (2, the regions' bounds).
/// Variables:
///  - start (start): the truth's time at the window's start; start_index (start, int32): its save index in the run
///    (the index into the truth file's time);
///  - lead (lead): the lead in time units (a multiple of `s.Truth.SaveEvery`);
///  - omega, q, P (start, lead, y, x): the forecast fields; lead 0 is the truth's start state;
///  - precipitation (start, lead, region_y, region_x): the regional precipitation from the start to each lead,
///    `Climate.regionalPrecipitation` (P's change summed over the region's cells times the cell area; the regions
///    add up to the domain integral);
///  - region_y, region_x with region_y_bounds, region_x_bounds: the regions' centres and edges.
/// Global attributes: Conventions CF-1.8, title, source (the model's name, the coarse grid, scheme, step and
/// viscosity), history, comment. Values in the truth's precision.
let write
    (s: Climate.Settings)
    (m: Climate.Trained)
    (split: string)
    (run: ClimateTruth.Run)
    (starts: int[])
    (intervals: int)
    (path: string)
    : unit =
    use _ = torch.no_grad ()
    use _ = torch.NewDisposeScope()
    let n = s.Truth.ModelCells
    let r = s.Regions
    let forecast = m.Forecast (Climate.startStates run starts) intervals

    // [L; B; nx; ny] → (start, lead, y, x).
    let field (t: torch.Tensor) = values (t.permute (1L, 0L, 3L, 2L))

    let regional =
        let p = forecast[2]

        torch.stack (Array.init (intervals + 1) (fun k -> Climate.regionalPrecipitation r (p[0L]) (p[int64 k])), 0L)

    let cell = 2.0 * Math.PI / float n
    let centres = Array.init n (fun i -> (float i + 0.5) * cell)
    let region = 2.0 * Math.PI / float r
    let regionCentres = Array.init r (fun i -> (float i + 0.5) * region)

    let bounds =
        Array.init r (fun i -> [| float i * region; float (i + 1) * region |])
        |> Array.concat

    let fieldVariable (name: string) (t: torch.Tensor) (attributes: (string * AttributeValue) list) : Variable = {
        Name = name
        Dimensions = [ "start"; "lead"; "y"; "x" ]
        Data = field t
        Attributes = attributes @ [ "units", Text "1" ]
    }

    let regionAxis (name: string) (axis: string) (what: string) =
        let centre =
            coordinate name (Some axis) $"{what} centre of a precipitation region (non-dimensional)" regionCentres

        [
            {
                centre with
                    Attributes = centre.Attributes @ [ "bounds", Text $"{name}_bounds" ]
            }
            {
                Name = $"{name}_bounds"
                Dimensions = [ name; "nv" ]
                Data = Float64 bounds
                Attributes = [ "units", Text "1" ]
            }
        ]

    let withVariables (variables: Variable list) (d: Dataset) =
        List.fold (fun d v -> Dataset.withVariable v d) d variables

    let dataset =
        Dataset.empty
        |> Dataset.withDimension "start" starts.Length
        |> Dataset.withDimension "lead" (intervals + 1)
        |> Dataset.withDimension "y" n
        |> Dataset.withDimension "x" n
        |> Dataset.withDimension "region_y" r
        |> Dataset.withDimension "region_x" r
        |> Dataset.withDimension "nv" 2
        |> Dataset.withVariable (
            coordinate
                "start"
                None
                "time of the forecast's start state in the truth's run (non-dimensional model time)"
                (starts |> Array.map (fun i -> run.Times[i]))
        )
        |> Dataset.withVariable {
            Name = "start_index"
            Dimensions = [ "start" ]
            Data = Int32 starts
            Attributes = [ "long_name", Text "index of the start state in the truth file's time axis" ]
        }
        |> Dataset.withVariable (
            coordinate
                "lead"
                None
                "lead time of the forecast from its start (non-dimensional model time)"
                (Array.init (intervals + 1) (fun k -> float k * s.Truth.SaveEvery))
        )
        |> Dataset.withVariable (
            coordinate
                "y"
                (Some "Y")
                "meridional coordinate, non-dimensional: cell centres of the periodic domain [0, 2π), equator at π"
                centres
        )
        |> Dataset.withVariable (
            coordinate
                "x"
                (Some "X")
                "zonal coordinate, non-dimensional: cell centres of the periodic domain [0, 2π)"
                centres
        )
        |> withVariables (regionAxis "region_y" "Y" "meridional")
        |> withVariables (regionAxis "region_x" "X" "zonal")
        |> Dataset.withVariable (
            fieldVariable "omega" (forecast[0]) [ "long_name", Text "forecast relative vorticity ω (non-dimensional)" ]
        )
        |> Dataset.withVariable (
            fieldVariable "q" (forecast[1]) [
                "standard_name", Text "specific_humidity"
                "long_name", Text "forecast specific humidity q (non-dimensional)"
            ]
        )
        |> Dataset.withVariable (
            fieldVariable "P" (forecast[2]) [
                "long_name",
                Text "forecast accumulated precipitation P (non-dimensional; it starts from the truth's P at the start)"
            ]
        )
        |> Dataset.withVariable {
            Name = "precipitation"
            Dimensions = [ "start"; "lead"; "region_y"; "region_x" ]
            Data = values (regional.permute (1L, 0L, 3L, 2L))
            Attributes = [
                "long_name",
                Text
                    "forecast regional precipitation from the start to the lead: the change of P summed over the region's cells times the cell area (non-dimensional)"
                "units", Text "1"
            ]
        }
        |> Dataset.withAttribute "Conventions" (Text "CF-1.8")
        |> Dataset.withAttribute "title" (Text $"Hybrid climate case: forecasts of {m.Name}, {split}")
        |> Dataset.withAttribute
            "source"
            (Text
                $"Hybrid (Hybrid.Models.Cases.Climate): {m.Name} on the {n} x {n} coarse grid, Heun with dt = {num s.ModelDt} and nu = {num s.ModelNu}, started from the coarse-grained truth; regions {r} x {r}.")
        |> Dataset.withAttribute
            "history"
            (Text
                $"""{DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)} written by Hybrid.Models (ClimateForecastFile.write)""")
        |> Dataset.withAttribute
            "comment"
            (Text
                "Forecasts of a twin experiment (issue #16); the truth is in the truth files of the same run (ClimateTruthFile). Non-dimensional, hence units \"1\".")

    NetCdf.write path dataset

namespace Hybrid.Interactive

open Hybrid.Compiler

/// A compiled simulator as a notebook shows it: its description (`Simulator.Display`) and its parameters'
/// table.
[<RequireQualifiedAccess>]
module SimulatorDisplay =

    /// `Simulator.Display`: model, fields, grid, parameters, closures, forcings, back end, one line each.
    let text (s: Simulator) : string = s.Display

    /// The description in a `<pre>` element followed by the parameters' table (`ParameterTable.html`).
    let html (s: Simulator) : string =
        String.concat "\n" [
            "<div class=\"hybrid-simulator\">"
            $"<pre>{Html.escape s.Display}</pre>"
            ParameterTable.html s.Parameters
            "</div>"
        ]

namespace Hybrid.Interactive

open System
open Microsoft.DotNet.Interactive.Formatting
open TorchSharp
open Hybrid
open Hybrid.Compiler
open Hybrid.Numerics
open Hybrid.Training

/// Registers Hybrid's .NET Interactive formatters. Referencing the package in a notebook
/// (`#r "nuget: Hybrid.Interactive"`) calls `register` through its extension script; call it yourself where
/// the extension does not run (e.g. after `#r` of the DLL).
[<RequireQualifiedAccess>]
module Formatters =

    let private gate = obj ()
    let mutable private registered = false

    let private add<'T> (html: 'T -> string) (text: 'T -> string) =
        Formatter.Register<'T>(Func<'T, string> html, "text/html")
        Formatter.Register<'T>(Func<'T, string> text, "text/plain")
        Formatter.SetPreferredMimeTypesFor(typeof<'T>, "text/html", "text/plain")

    /// Registers the formatters, once per process (later calls do nothing): `Model` (equations through MathJax;
    /// text form as plain text), `Simulator` (description and parameter table), `Param[]` and `Param`
    /// (parameter table), `torch.Tensor` (dtype, shape, first values) and `TrainResult` (table and loss chart);
    /// each in `text/html` and `text/plain`.
    let register () : unit =
        lock gate (fun () ->
            if not registered then
                add<Model> ModelDisplay.html ModelDisplay.text
                add<Simulator> SimulatorDisplay.html SimulatorDisplay.text
                add<Param[]> ParameterTable.html ParameterTable.text
                add<Param> (fun p -> ParameterTable.html [ p ]) (fun p -> ParameterTable.text [ p ])
                add<torch.Tensor> TensorSummary.html TensorSummary.text
                add<TrainResult> TrainResultDisplay.html TrainResultDisplay.text
                registered <- true)

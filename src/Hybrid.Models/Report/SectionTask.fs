/// A report section not yet split into finer tasks, as one task: the task runs the whole case (or experiment) and
/// writes its section's files (CSV files, charts) into its files folder, and carries the section's markdown as its
/// one text, "markdown". A sweep still runs such sections in parallel with each other and with the finer tasks.
module internal Hybrid.Models.Report.SectionTask

open Hybrid
open Hybrid.Models.Tasks

/// The model name of a whole-section task.
[<Literal>]
let Model = "section"

/// An experiment of one task per settings key ("quick" or "full"): `write dir key` runs the section under that
/// key, writes its files into `dir` and returns its markdown.
let experiment (name: string) (title: string) (write: string -> string -> string) : Experiment = {
    Name = name
    Title = title
    Tasks =
        fun key ->
            match key with
            | "quick"
            | "full" -> [ TaskSpec.create name key Model 0 ]
            | other ->
                raise (
                    HybridException
                        $"The {title} section runs under the settings quick or full, not '{other}'; plan it with --quick or without."
                )
    Run = fun files t -> Experiment.result t [||] [||] [| "markdown", write files t.Settings |]
    Assemble =
        fun _ _ results ->
            match results with
            | [ r ] -> TaskResult.text "markdown" r
            | _ -> raise (HybridException $"The {title} section has {results.Length} task results; it needs one.")
}

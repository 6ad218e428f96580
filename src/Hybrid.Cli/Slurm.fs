/// The Slurm back end of `hybrid sweep run --on slurm` (see `run`).
module Hybrid.Cli.Slurm

/// Placeholder until the Slurm back end lands.
let run (folder: string) (retry: bool) (threads: int) (dryRun: bool) (limit: int) : int =
    ignore (folder, retry, threads, dryRun, limit)
    eprintfn "error: --on slurm is not available yet."
    1

/// Kill and resume across processes: a training process is killed with SIGKILL at seeded moments (each right
/// after a given checkpoint appears on disk), resumed, and its final weights and losses compared bitwise with an
/// uninterrupted run. The training runs in a child process started from this test executable with the hidden
/// arguments `--train-child <folder> <epochs>` (see Main.fs), so the process killed is the one that trains.
module Hybrid.Tests.Training.KillResumeTests

open System
open System.Diagnostics
open System.IO
open System.Reflection
open System.Threading
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Training

let private f64 = torch.ScalarType.Float64

/// The hidden argument that makes the test executable train instead of running tests.
[<Literal>]
let ChildFlag = "--train-child"

let private every = 10

/// The child's work: a small regression with dropout (the RNG matters) and random mini-batches (sampling
/// matters), checkpointed every 10 epochs into `dir`, resumed from it when it holds a checkpoint. Each epoch
/// sleeps 3 ms in the progress hook so that a kill lands mid-run (the numbers do not depend on it). Prints
/// `start <epoch>` (where it resumed) and writes `dir/result.txt`: the final weights and training losses as
/// the hexadecimal bits of each double. Returns the exit code.
let child (dir: string) (epochs: int) : int =
    Engine.seed 5
    let start = Checkpoint.latest dir |> Option.map Path.GetFileName

    printfn "start %s" (defaultArg start "none")

    let net = new Mlp("net", 1, 1, 16, 2, dropout = 0.1, dtype = f64)
    let x = torch.linspace(-1.0, 1.0, 64L, dtype = f64).unsqueeze (-1L)
    let y = torch.sin (3.0 * x)

    let options = {
        Trainer.defaults with
            Epochs = epochs
            StepsPerEpoch = 2
            Seed = 5
            Groups = [| Trainer.group "phi" 0.01 (Neural.parameters net) |]
            CheckpointDir = Some dir
            CheckpointEvery = every
            Modules = [| net |]
            Progress = {
                Progress.silent with
                    Hook = Some(Progress.hook (fun _ -> Thread.Sleep 3))
            }
    }

    let objective = {
        Loss =
            fun ctx ->
                let idx =
                    Windows.sample ctx.Random 16 (Array.init 64 (fun i -> (i, 0)))
                    |> Array.map (fst >> int64)

                let it = torch.tensor idx
                let l = Loss.mse (net.forward (x.index_select (0L, it))) (y.index_select (0L, it))
                { Total = l; Parts = [||] }
        Validation = Some(fun _ -> Metrics.mse (net.forward x) y)
    }

    let result = Trainer.train options objective

    let weights =
        Neural.parameters net
        |> Array.collect (fun p -> p.detach().reshape(-1L).data<float>().ToArray())

    let bits (v: float) =
        BitConverter.DoubleToInt64Bits(v).ToString("x16")

    File.WriteAllLines(
        Path.Combine(dir, "result.txt"),
        [|
            "weights " + String.Join(" ", weights |> Array.map bits)
            "losses " + String.Join(" ", result.TrainLosses |> Array.map bits)
        |]
    )

    0

/// A child process training into `dir` for `epochs` epochs, its output collected.
type private Child(dir: string, epochs: int) =
    let output = Text.StringBuilder()

    let info =
        let host = Environment.ProcessPath
        let entry = Assembly.GetEntryAssembly().Location

        // Under `dotnet Hybrid.Tests.dll` the host is dotnet and needs the assembly; the apphost does not.
        let prefix =
            if Path.GetFileNameWithoutExtension host = "dotnet" then
                $"\"{entry}\" "
            else
                ""

        ProcessStartInfo(
            host,
            $"{prefix}{ChildFlag} \"{dir}\" {epochs}",
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false
        )

    let proc = new Process(StartInfo = info)

    do
        let collect =
            DataReceivedEventHandler(fun _ e ->
                if not (isNull e.Data) then
                    lock output (fun () -> output.AppendLine e.Data |> ignore))

        proc.OutputDataReceived.AddHandler collect
        proc.ErrorDataReceived.AddHandler collect
        proc.Start() |> ignore
        proc.BeginOutputReadLine()
        proc.BeginErrorReadLine()

    member _.Process = proc

    /// What the child printed so far.
    member _.Output = lock output (fun () -> output.ToString())

    interface IDisposable with
        member _.Dispose() = proc.Dispose()

/// The newest epoch whose checkpoint folder is complete (renamed into place with its manifest; 0 when none).
let private newestEpoch (dir: string) =
    if Directory.Exists dir then
        Directory.GetDirectories(dir, "epoch-*")
        |> Array.filter (fun d ->
            not (Path.GetFileName(d).Contains '.')
            && File.Exists(Path.Combine(d, "manifest.txt")))
        |> Array.map (fun d -> int (Path.GetFileName(d).Substring "epoch-".Length))
        |> Array.fold max 0
    else
        0

/// The epoch of the checkpoint `latest` points at (0 when none yet).
let private latestEpoch (dir: string) =
    try
        let text = File.ReadAllText(Path.Combine(dir, "latest")).Trim()
        int (text.Substring "epoch-".Length)
    with _ ->
        0

/// Runs a child to completion; returns its output.
let private complete (dir: string) (epochs: int) =
    use c = new Child(dir, epochs)

    if not (c.Process.WaitForExit 120_000) then
        c.Process.Kill()
        failtestf "the training child did not finish within 120 s. Output:\n%s" c.Output

    c.Process.WaitForExit()
    Expect.equal c.Process.ExitCode 0 $"the child succeeds. Output:\n{c.Output}"
    c.Output

/// Starts a child and SIGKILLs it as soon as `latest` points at epoch ≥ `at`; returns (its output, the epoch
/// `latest` showed just before the kill).
let private killAt (dir: string) (epochs: int) (at: int) =
    use c = new Child(dir, epochs)
    let watch = Stopwatch.StartNew()

    while latestEpoch dir < at
          && not c.Process.HasExited
          && watch.Elapsed.TotalSeconds < 120.0 do
        Thread.Sleep 1

    let seen = latestEpoch dir
    Expect.isFalse c.Process.HasExited $"the child is still training at epoch {seen}. Output:\n{c.Output}"
    Expect.isGreaterThanOrEqual seen at $"the checkpoint of epoch {at} appeared. Output:\n{c.Output}"
    // Process.Kill sends SIGKILL on Linux: no handler, no cleanup, no flush.
    c.Process.Kill()
    c.Process.WaitForExit()
    c.Output, seen

let private startOf (output: string) =
    output.Split('\n')
    |> Array.pick (fun l ->
        if l.StartsWith "start " then
            Some(l.Substring(6).Trim())
        else
            None)

let tests =
    testSequenced
    <| testList "Kill and resume" [
        test "SIGKILLed three times at seeded checkpoints, the resumed run equals an uninterrupted one bitwise" {
            let epochs = 240

            let root =
                Path.Combine(Path.GetTempPath(), "hybrid-kill-" + Guid.NewGuid().ToString("N"))

            let whole = Path.Combine(root, "whole")
            let killed = Path.Combine(root, "killed")

            try
                complete whole epochs |> ignore

                // Three kill moments drawn with a fixed seed among the checkpoints of epochs 20 … 200.
                let moments =
                    let r = Random(20)

                    Seq.initInfinite (fun _ -> every * r.Next(2, 21))
                    |> Seq.distinct
                    |> Seq.take 3
                    |> Seq.sort
                    |> Array.ofSeq

                let mutable previous = 0

                for at in moments do
                    let output, seen = killAt killed epochs at
                    // Every run resumes from the newest checkpoint the previous one left.
                    let expected =
                        if previous = 0 then
                            "none"
                        else
                            sprintf "epoch-%06d" previous

                    Expect.equal
                        (startOf output)
                        expected
                        $"run killed at epoch {at} started where the last one stopped"
                    // The newest complete folder (`latest` may lag behind it if the kill came between the two).
                    previous <- newestEpoch killed
                    Expect.isGreaterThanOrEqual previous seen "the kill left the checkpoint it had seen"

                let final = complete killed epochs

                Expect.equal
                    (startOf final)
                    (sprintf "epoch-%06d" previous)
                    "the last run resumed from the last checkpoint"

                let read (d: string) =
                    File.ReadAllLines(Path.Combine(d, "result.txt"))

                let a, b = read whole, read killed
                Expect.equal b[1] a[1] "the training losses of all 240 epochs are bitwise equal"
                Expect.equal b[0] a[0] "the final weights are bitwise equal"
            finally
                if Directory.Exists root then
                    Directory.Delete(root, true)
        }
    ]

/// One rule for threads: concurrent compile and train are each equal to their sequential result or refused
/// with the guard's message; re-entrancy on one thread; the guard is released after an exception; no
/// generated kernel (nor anything else in Hybrid.Core or Hybrid.Models) starts a thread of its own.
module Hybrid.Tests.Engine.TorchGuardTests

open System
open System.Threading
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Training

let private f64 = torch.ScalarType.Float64
let private u = Sym "u"

/// ∂u/∂t = ∇·(D∇u) − kill(u, x)·u on [0, 1] (16 cells, no flux, a bump); `kill` is a closure: an MLP drawn by
/// the compiler from its seed, or the module passed under `kill` (`named`).
let private model (named: bool) =
    Model.empty "guarded"
    |> Model.withDomain (Domain.Interval(0.0, 1.0, 16))
    |> Model.addField (Model.field "u")
    |> Model.addParam {
        Model.param "D" 0.05 with
            Constraint = Constraint.Positive
    }
    |> Model.addClosure {
        Name = "kill"
        Arity = 2
        Architecture =
            if named then
                Architecture.Named "kill"
            else
                Architecture.Mlp([ 2; 8; 1 ], Activation.Tanh)
        Units = None
    }
    |> Model.addEquation "u" (Sub(Divergence(Mul(Sym "D", Grad u)), Mul(Call("kill", [ u; Sym "x" ]), u)))
    |> Model.setBoundaryAll "u" BoundaryCondition.NoFlux
    |> Model.setInitial
        "u"
        (InitialCondition.Expr(Mul(Num 0.8, Apply(Fn.Exp, Mul(Num -40.0, PowInt(Sub(Sym "x", Num 0.3), 2))))))

/// Every trainable number of a simulator, in order.
let private numbers (sim: Hybrid.Compiler.Simulator) : float[] =
    sim.Trainable()
    |> Array.collect (fun p -> p.detach().cpu().reshape([| -1L |]).data<float>().ToArray())

let private compileWith (seed: int) =
    Hybrid.Compiler.Compiler.compile
        {
            Hybrid.Compiler.Compiler.defaults with
                Seed = seed
        }
        (model false)

/// A simulator whose `kill` closure is an MLP with dropout (so training draws random masks), created from
/// `seed` on the calling thread before any concurrency starts.
let private withDropout (seed: int) =
    Engine.seed seed
    let net = new Mlp("kill", 2, 1, 8, 1, dropout = 0.2, dtype = f64)

    let sim =
        Hybrid.Compiler.Compiler.compile
            {
                Hybrid.Compiler.Compiler.defaults with
                    Modules = Map [ "kill", net :> torch.nn.Module<torch.Tensor, torch.Tensor> ]
            }
            (model true)

    sim, net

/// Trains `sim` (its closure `net` in training mode, so dropout is active) towards u = 0.1 at t = 0.02, 0.04;
/// `hook` sees every epoch's report.
let private train (seed: int) (hook: int -> unit) (sim: Hybrid.Compiler.Simulator, net: Mlp) =
    let rollout = {
        Rollout.defaults with
            Dt = 0.004
            SaveTimes = [| 0.02; 0.04 |]
    }

    let options = {
        Trainer.defaults with
            Epochs = 6
            StepsPerEpoch = 1
            Seed = seed
            Groups = [| Trainer.group "all" 0.01 (sim.Trainable()) |]
            Modules = [| net |]
            Progress = {
                Progress.silent with
                    Hook = Some(Progress.hook (fun r -> hook r.Epoch))
            }
    }

    let objective = {
        Loss =
            fun _ ->
                let values = sim.Simulate(sim.Initial 1, rollout).Values[0]
                let l = Loss.mse values (torch.full_like (values, 0.1))
                { Total = l; Parts = [||] }
        Validation = None
    }

    Trainer.train options objective |> ignore
    numbers sim

/// Runs `work 0` and `work 1` on two new threads released together; each result or exception.
let private onTwoThreads (work: int -> 'T) : Result<'T, exn>[] =
    let results = Array.zeroCreate 2
    use start = new Barrier(2)

    let threads =
        Array.init 2 (fun i ->
            Thread(
                (fun () ->
                    start.SignalAndWait()

                    results[i] <-
                        try
                            Ok(work i)
                        with e ->
                            Error e),
                Name = $"guard-test-{i}"
            ))

    threads |> Array.iter (fun t -> t.Start())
    threads |> Array.iter (fun t -> t.Join())
    results

/// The message a refused call gets, up to the elapsed time, and after it.
let private refusalStart (called: string) (calledOn: Thread) (running: string) (runningOn: Thread) =
    $"{called} was called on thread {calledOn.ManagedThreadId} ('{calledOn.Name}') while {running} is running on thread {runningOn.ManagedThreadId} ('{runningOn.Name}') (for "

let private refusalEnd =
    " s). Hybrid drives torch from one thread at a time: libtorch's random generator is process-wide, so concurrent runs would mix their seeds and dropout masks and not repeat, and TorchSharp's temporary Scalars can be freed by another thread mid-call. Call Hybrid from one thread, or wait for the running call to finish before starting the next (the C# facade queues its own calls on one thread); to train in parallel, run separate processes."

/// Each of two concurrent results equals its sequential one, or is the guard's refusal; at least one ran.
/// Returns the number refused.
let private equalOrRefused (what: string) (expected: float[][]) (results: Result<float[], exn>[]) =
    results
    |> Array.iteri (fun i r ->
        match r with
        | Ok v -> Expect.sequenceEqual v expected[i] $"{what} on thread {i} equals its sequential result bit for bit"
        | Error(:? InvalidOperationException as e) ->
            Expect.stringContains e.Message " was called on thread " $"{what} on thread {i}: a refusal names the call"
            Expect.stringEnds e.Message refusalEnd $"{what} on thread {i}: the refusal says why and the fix"
        | Error e -> failtest $"{what} on thread {i} failed with something other than the guard's refusal: {e}")

    Expect.isTrue
        (results |> Array.exists (fun r -> r.IsOk))
        $"{what}: one of two concurrent calls always runs (the other is refused only while it runs)"

    results |> Array.filter (fun r -> r.IsError) |> Array.length

let private thread (name: string) (body: unit -> unit) =
    let t = Thread(body, Name = name)
    t.Start()
    t

let tests =
    testSequenced
    <| testList "TorchGuard" [
        test
            "a call from another thread while training runs is refused at once with both runs, threads and the fix; the training is undisturbed" {
            let expected = withDropout 21 |> train 7 ignore
            let pair = withDropout 21
            use inside = new ManualResetEventSlim()
            use resume = new ManualResetEventSlim()
            let mutable trained = [||]

            let trainer =
                thread "trainer" (fun () ->
                    trained <-
                        train
                            7
                            (fun epoch ->
                                if epoch = 2 then
                                    inside.Set()
                                    resume.Wait())
                            pair)

            inside.Wait()
            let mutable refused: exn = null

            let caller =
                thread "caller" (fun () ->
                    try
                        compileWith 4 |> ignore
                    with e ->
                        refused <- e)

            caller.Join()
            resume.Set()
            trainer.Join()

            Expect.isNotNull refused "the compile on the second thread was refused"
            Expect.equal (refused.GetType()) typeof<InvalidOperationException> "an InvalidOperationException"

            Expect.stringStarts
                refused.Message
                (refusalStart "Compiler.compile (model 'guarded')" caller "Trainer.train" trainer)
                "names the refused call, its thread, the active run and its thread"

            Expect.stringEnds refused.Message refusalEnd "says why and the fix"
            Expect.sequenceEqual trained expected "the training equals the same training run alone"
            Expect.isNone (TorchGuard.active ()) "released when the training ended"
        }

        test "concurrent seeded compiles from two threads: each equals its sequential result or is refused" {
            let expected = [| (compileWith 4 |> numbers); (compileWith 5 |> numbers) |]
            Expect.notEqual expected[0] expected[1] "the two seeds draw different weights (else the test shows nothing)"

            let refused =
                List.sum [
                    for _ in 1..12 do
                        let sims = onTwoThreads (fun i -> compileWith (4 + i))
                        // Read the weights after both threads ended: reading is torch work too.
                        sims |> Array.map (Result.map numbers) |> equalOrRefused "compile" expected
                ]

            printfn "concurrent compiles: %d of 24 refused" refused
        }

        test "concurrent training with a neural closure and dropout: each equals its sequential result or is refused" {
            let expected = [| (withDropout 30 |> train 8 ignore); (withDropout 31 |> train 9 ignore) |]
            Expect.notEqual expected[0] expected[1] "two set-ups train to different weights"

            let refused =
                List.sum [
                    for _ in 1..3 do
                        let pairs = [| withDropout 30; withDropout 31 |]

                        onTwoThreads (fun i -> train (8 + i) ignore pairs[i])
                        |> equalOrRefused "train" expected
                ]

            printfn "concurrent trainings: %d of 6 refused" refused
        }

        test "re-entrant on one thread: compile, simulate and train nest inside a run and give the same numbers" {
            let expectedCompile = compileWith 4 |> numbers
            let expectedTrain = withDropout 30 |> train 8 ignore
            let me = Thread.CurrentThread.ManagedThreadId

            let compiled, trained =
                TorchGuard.run "outer" (fun () ->
                    let c = compileWith 4 |> numbers

                    Expect.equal
                        (TorchGuard.active ())
                        (Some("outer", me))
                        "still held by the outer run after a nested call returned"

                    let inner = TorchGuard.enter "inner"
                    inner.Dispose()
                    inner.Dispose()

                    Expect.equal
                        (TorchGuard.active ())
                        (Some("outer", me))
                        "disposing a nested lease twice releases it once"

                    c, withDropout 30 |> train 8 ignore)

            Expect.sequenceEqual compiled expectedCompile "nested compile equals compile alone"
            Expect.sequenceEqual trained expectedTrain "nested training equals training alone"
            Expect.isNone (TorchGuard.active ()) "released when the outer run returned"
        }

        test "the guard is released after an exception, and another thread may then run" {
            let unsupplied =
                Expect.throwsC
                    (fun () ->
                        Hybrid.Compiler.Compiler.compile Hybrid.Compiler.Compiler.defaults (model true)
                        |> ignore)
                    id

            Expect.stringContains
                unsupplied.Message
                "names the module 'kill', which was not supplied"
                "the compile failed inside the guard"

            Expect.isNone (TorchGuard.active ()) "released after the failed compile"

            let killed =
                Expect.throwsC
                    (fun () ->
                        withDropout 30
                        |> train 8 (fun e ->
                            if e = 2 then
                                failwith "killed")
                        |> ignore)
                    id

            Expect.equal killed.Message "killed" "the training failed inside the guard"
            Expect.isNone (TorchGuard.active ()) "released after the failed training"

            let mutable other = [||]
            let t = thread "after" (fun () -> other <- compileWith 4 |> numbers)
            t.Join()
            Expect.sequenceEqual other (compileWith 4 |> numbers) "another thread compiles normally afterwards"
        }

        test
            "Hybrid.Core and Hybrid.Models start no threads but the kernels' worker pool, which calls no TorchSharp (IL check)" {
            let startsThread (callee: string) =
                [
                    "System.Threading.Thread::.ctor"
                    "System.Threading.ThreadPool::"
                    "System.Threading.Tasks.Parallel::"
                    "System.Threading.Tasks.Task::Run"
                    "System.Threading.Tasks.TaskFactory::StartNew"
                    "System.Threading.Tasks.Task`1::Run"
                ]
                |> List.exists callee.StartsWith

            let calls (a: Reflection.Assembly) =
                IlCalls.read a.Location |> List.filter (fun c -> startsThread c.Callee)

            // The C# facade starts its one torch thread (TorchThread): the check must see that call.
            Expect.isNonEmpty
                (calls typeof<Hybrid.CSharp.HybridEngine>.Assembly)
                "the check finds the facade's thread start"

            // The one exception: the kernels' worker pool (Kernels/WorkerPool.fs), whose parts are plain array
            // loops: neither it nor the passes it runs (Kernels/RowSplit.fs) call TorchSharp.
            let inPool (c: IlCalls.Call) =
                [
                    "WorkerPool"
                    "KernelThreads"
                    "RowSplit"
                    "ForwardPass"
                    "AdjointPass"
                    "CombinationPass"
                ]
                |> List.exists c.Caller.Contains

            let core = typeof<Hybrid.Numerics.Grid>.Assembly

            Expect.isNonEmpty (calls core |> List.filter inPool) "the check finds the kernel worker pool's thread start"

            let poolTorch =
                IlCalls.read core.Location
                |> List.filter (fun c -> inPool c && c.Callee.StartsWith "TorchSharp")

            Expect.isEmpty poolTorch "the kernel worker pool and its passes call no TorchSharp"

            let offenders =
                [ core; typeof<Hybrid.Models.Cases.PredatorPrey.Settings>.Assembly ]
                |> List.collect calls
                |> List.filter (inPool >> not)
                |> List.map (fun c -> $"{c.File}:{c.Line}  {c.Callee}  (in {c.Caller})")
                |> List.distinct

            Expect.isEmpty
                offenders
                ("These calls start threads; work on them would call TorchSharp beside the thread that holds TorchGuard:\n"
                 + String.Join("\n", offenders))
        }
    ]

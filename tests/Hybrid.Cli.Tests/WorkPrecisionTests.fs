/// `hybrid bench-stiff`'s parts: the Python export of a model (its right-hand side and Jacobian evaluated by
/// Python against the model's own expressions and finite differences), the equal-error interpolation on given
/// curves, and a small work–precision run of HIRES (Hybrid's Rodas4 and SciPy's Radau within ten times the
/// tolerance of the published reference; its CSV read back by the library's reader).
module Hybrid.Cli.Tests.WorkPrecisionTests

open System
open System.Diagnostics
open System.IO
open Expecto
open Hybrid
open Hybrid.Cli
open Hybrid.Training

/// Runs `code` with the Python that has SciPy; its standard output. Skips the test where there is none.
let private python (code: string) =
    match SciPyRuns.interpreter () with
    | None -> skiptest "SciPy is not installed (apt-get install python3-scipy)"
    | Some py ->
        let path = Path.Combine(Path.GetTempPath(), $"hybrid-export-{Guid.NewGuid():N}.py")
        File.WriteAllText(path, code)

        try
            let info =
                ProcessStartInfo(py, RedirectStandardOutput = true, RedirectStandardError = true)

            info.ArgumentList.Add path
            use proc = Process.Start info
            let err = proc.StandardError.ReadToEndAsync()
            let out = proc.StandardOutput.ReadToEnd()
            proc.WaitForExit()
            Expect.equal proc.ExitCode 0 $"python failed: {err.Result}"
            out
        finally
            File.Delete path

let private numbers (text: string) =
    text.Split([| ' '; '\n' |], StringSplitOptions.RemoveEmptyEntries)
    |> Array.map (fun s -> Double.Parse(s, Globalization.CultureInfo.InvariantCulture))

/// The right-hand side of `m` at `state` from its own expressions (`Symbolic.eval`).
let private rhs (m: Model) (state: Map<string, float>) =
    let values =
        m.Constants
        |> List.fold (fun (acc: Map<string, float>) c -> acc.Add(c.Name, c.Value)) state

    m.Fields
    |> List.map (fun f -> (m.Equations |> List.find (fun e -> e.Field = f.Name)).Rhs)
    |> List.map (Symbolic.eval values)
    |> Array.ofList

let tests =
    testList "WorkPrecision" [
        test "the exported f and jac of POLLU and VDPOL = the model's expressions and their central differences" {
            for p in [ IvpTestSet.pollution; IvpTestSet.vanDerPol ] do
                let m = Parse.model p.Text
                let names = m.Fields |> List.map (fun f -> f.Name) |> Array.ofList
                let random = Random 3
                // A state away from zero in every component, so no term vanishes.
                let y = names |> Array.map (fun _ -> 0.1 + random.NextDouble())
                let state = Array.zip names y |> Map.ofArray
                let listed = String.Join(", ", y |> Array.map (fun v -> v.ToString("R")))

                let out =
                    python (
                        PythonExport.ofModel m
                        + $"\ny = np.array([{listed}])\n"
                        + "print(' '.join(repr(float(v)) for v in f(0.0, y)))\n"
                        + "print(' '.join(repr(float(v)) for v in jac(0.0, y).ravel()))\n"
                    )

                let values = numbers out
                let n = names.Length
                let f = values[.. n - 1]
                let j = values[n..]
                let expected = rhs m state

                Array.iteri
                    (fun i (v: float) ->
                        Expect.floatClose
                            Accuracy.veryHigh
                            v
                            expected[i]
                            $"{p.Name}: f[{i}] Python {v} vs model {expected[i]}")
                    f

                for c in 0 .. n - 1 do
                    let h = 1e-6 * y[c]
                    let plus = rhs m (state.Add(names[c], y[c] + h))
                    let minus = rhs m (state.Add(names[c], y[c] - h))

                    for r in 0 .. n - 1 do
                        let fd = (plus[r] - minus[r]) / (2.0 * h)
                        let scale = max (abs fd) (abs expected[r] / y[c])

                        Expect.isLessThan
                            (abs (j[r * n + c] - fd))
                            (1e-5 * scale + 1e-12)
                            $"{p.Name}: J[{r},{c}] Python {j[r * n + c]} vs central difference {fd}"
        }

        test "a model that is not a system of ODEs is refused by name" {
            let message =
                Expect.throwsC (fun () -> PythonExport.ofModel Examples.fisherKpp |> ignore) (fun e -> e.Message)

            Expect.stringContains message "model 'fisher_kpp'" "names the model"
            Expect.stringContains message "domain point" "says what works"
        }

        test "SciPy's time at an error: log–log interpolation between the bracketing runs, the best method wins" {
            let row solver error seconds : WorkPrecision.Row = {
                Problem = "P"
                Solver = solver
                Tolerance = 0.0
                Error = error
                Seconds = seconds
                Status = "ok"
            }

            let rows = [
                // Halfway in log error between 1e-2 and 1e-4: the geometric mean of 0.1 s and 1 s.
                row "SciPy A" 1e-2 0.1
                row "SciPy A" 1e-4 1.0
                row "SciPy B" 1e-2 0.5
                row "SciPy B" 1e-4 2.0
                // A failed run does not count.
                {
                    row "SciPy C" 1e-3 0.001 with
                        Status = "timeout"
                }
            ]

            let t = (WorkPrecision.scipyTimeAt rows 1e-3).Value
            Expect.floatClose Accuracy.high t (sqrt 0.1) "A, interpolated"
            Expect.isNone (WorkPrecision.scipyTimeAt rows 1e-6) "no curve reaches 1e-6"
        }

        test "HIRES: Hybrid's Rodas4 and SciPy's Radau within 10× the tolerance of the reference; the CSV reads back" {
            if SciPyRuns.interpreter () |> Option.isNone then
                skiptest "SciPy is not installed (apt-get install python3-scipy)"

            let s: WorkPrecision.Settings = {
                WorkPrecision.quick with
                    Problems = [ IvpTestSet.hires ]
                    Tolerances = [ 1e-4; 1e-6 ]
                    Schemes = [ "Rodas4", Hybrid.Numerics.Scheme.Rodas4 ]
                    SciPy = [ "Radau" ]
            }

            let rows = WorkPrecision.run s ignore
            Expect.equal rows.Length 4 "two solvers × two tolerances"

            for r in rows do
                Expect.equal r.Status "ok" $"{r.Solver} at {r.Tolerance}"
                Expect.isLessThan r.Error (10.0 * r.Tolerance) $"{r.Solver} at {r.Tolerance}: error {r.Error}"

            let table = Csv.parse "work-precision" (WorkPrecision.csv rows)
            Expect.equal table.Rows.Length 4 "rows"

            let page = WorkPrecision.markdown s rows "this machine" 1.0
            Expect.stringContains page "| tolerance | Hybrid Rodas4 | SciPy Radau |" "the HIRES table"
            Expect.stringContains page "| HIRES | Hybrid Rodas4 | 0.0001 |" "the speed-up rows"
        }
    ]

/// SciPy's `solve_ivp` on a test-set problem (`IvpTestSet`), in a `python3` process: the problem exported by
/// `PythonExport` (the same equations and exact Jacobian as Hybrid's), each method at each tolerance with the
/// problem's absolute tolerances, timed as the median of up to three runs (one where a run takes over a second),
/// and stopped by a timer after a time budget (then not run at tighter tolerances). Needs SciPy (Debian's `python3-scipy`).
module internal Hybrid.Cli.SciPyRuns

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open Hybrid

/// One run's outcome: the final state (empty where it failed or ran out of time), the median wall time (s), and
/// "ok", "timeout" or SciPy's message.
type Outcome = {
    Method: string
    Tolerance: float
    Final: float[]
    Seconds: float
    Status: string
}

/// The driver appended to the exported problem: runs `METHODS` × `TOLERANCES` (argv: comma-separated methods,
/// comma-separated tolerances from loose to tight, seconds of budget per run) and prints one JSON object per run; a
/// method stopped by the timer is not run at the tighter tolerances after it.
let private driver =
    """

import json, signal, statistics, sys, time
from scipy.integrate import solve_ivp


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


signal.signal(signal.SIGALRM, _alarm)


def _run(method, rtol, budget):
    options = dict(method=method, rtol=rtol, atol=rtol * np.array(SCALE), t_eval=[T_END])
    if method != 'RK45':
        options['jac'] = jac
    times = []
    sol = None
    while len(times) < 3 and sum(times) < 1.0:
        signal.setitimer(signal.ITIMER_REAL, budget)
        try:
            start = time.perf_counter()
            sol = solve_ivp(f, (0.0, T_END), np.array(Y0), **options)
            times.append(time.perf_counter() - start)
        except _Timeout:
            return dict(method=method, tolerance=rtol, final=[], seconds=budget, status='timeout')
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if not sol.success:
            return dict(method=method, tolerance=rtol, final=[], seconds=times[-1], status=str(sol.message))
    return dict(method=method, tolerance=rtol, final=[float(v) for v in sol.y[:, -1]],
                seconds=statistics.median(times), status='ok')


for _m in sys.argv[1].split(','):
    _stopped = False
    for _t in sys.argv[2].split(','):
        if _stopped:
            print(json.dumps(dict(method=_m, tolerance=float(_t), final=[], seconds=0.0,
                                  status='not run: stopped at a looser tolerance')), flush=True)
            continue
        _r = _run(_m, float(_t), float(sys.argv[3]))
        _stopped = _r['status'] == 'timeout'
        print(json.dumps(_r), flush=True)
"""

let private listOf (xs: float[]) =
    "[" + String.Join(", ", xs |> Array.map Print.number) + "]"

/// The whole script for `p` starting from `initial` (one value per field).
let script (p: IvpTestSet.Problem) (initial: float[]) : string =
    String.concat "\n" [
        PythonExport.ofModel (Parse.model p.Text)
        $"Y0 = {listOf initial}"
        $"T_END = {Print.number p.End}"
        $"SCALE = {listOf p.Scale}"
        driver
    ]

/// The first Python that imports SciPy: `python3` on the path, else Debian's /usr/bin/python3 (a pyenv or venv
/// python3 on the path may lack the system's packages).
let interpreter () : string option =
    [ "python3"; "/usr/bin/python3" ]
    |> List.tryFind (fun python ->
        try
            use proc =
                Process.Start(ProcessStartInfo(python, "-c \"import scipy\"", RedirectStandardError = true))

            proc.WaitForExit()
            proc.ExitCode = 0
        with _ ->
            false)

/// Runs `methods` at `tolerances` on `p` from `initial`, each run stopped after `budget` seconds. Raises a
/// `HybridException` with the fix where SciPy is missing or the script fails.
let run (p: IvpTestSet.Problem) (initial: float[]) (methods: string list) (tolerances: float list) (budget: float) =
    let python =
        interpreter ()
        |> Option.defaultWith (fun () ->
            raise (
                HybridException
                    "SciPy is not available to python3 (nor to /usr/bin/python3): install it (Debian: apt-get install python3-scipy; elsewhere: pip install scipy) and run the benchmark again."
            ))

    let path =
        Path.Combine(Path.GetTempPath(), $"hybrid-scipy-{p.Name}-{Guid.NewGuid():N}.py")

    File.WriteAllText(path, script p initial)

    try
        let tols = String.Join(",", tolerances |> List.map Print.number)

        let info =
            ProcessStartInfo(python, RedirectStandardOutput = true, RedirectStandardError = true)

        for a in [ path; String.Join(",", methods); tols; Print.number budget ] do
            info.ArgumentList.Add a

        use proc = Process.Start info
        let err = proc.StandardError.ReadToEndAsync()
        let out = proc.StandardOutput.ReadToEnd()
        proc.WaitForExit()

        if proc.ExitCode <> 0 then
            raise (HybridException $"SciPy's runs of {p.Name} failed (python3 exit code {proc.ExitCode}): {err.Result}")

        out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        |> Array.map (fun line ->
            let o = JsonDocument.Parse(line).RootElement

            {
                Method = o.GetProperty("method").GetString()
                Tolerance = o.GetProperty("tolerance").GetDouble()
                Final =
                    o.GetProperty("final").EnumerateArray()
                    |> Seq.map (fun v -> v.GetDouble())
                    |> Array.ofSeq
                Seconds = o.GetProperty("seconds").GetDouble()
                Status = o.GetProperty("status").GetString()
            })
        |> List.ofArray
    finally
        File.Delete path

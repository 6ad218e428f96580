/// Tasks and their result files: canonical JSON and stable ids (pinned against SHA-256 values computed outside
/// .NET), the "hybrid-task-result 1" format read back exactly (NaN included), and refusals of other formats and
/// edited files with messages that say which Hybrid writes them and what to do.
module Hybrid.Tests.Tasks.TaskFormatTests

open System
open System.IO
open Expecto
open Hybrid
open Hybrid.Models.Common
open Hybrid.Models.Tasks

let private temporaryFolder () =
    let folder =
        Path.Combine(Path.GetTempPath(), "hybrid-tasks-" + Guid.NewGuid().ToString("N"))

    Directory.CreateDirectory folder |> ignore
    folder

let private sample () =
    let task = {
        TaskSpec.create "energy-balance" "quick" "hybrid" 3 with
            Share = Some 0.5
            Member = Some 2
    }

    {
        Experiment.result
            task
            [|
                {
                    Case = "energy-balance"
                    Model = "hybrid (EBM + MLP)"
                    Split = "test"
                    Metric = "mse"
                    Seed = 3
                    Value = 0.1 + 0.2
                }
                {
                    Case = "energy-balance"
                    Model = "hybrid (EBM + MLP)"
                    Split = ""
                    Metric = "param:ECS (K)"
                    Seed = 3
                    Value = nan
                }
            |] [| "simulated:hybrid", [| 1.0 / 3.0; -2.5e-300; infinity; -infinity |] |] [|
                "description:hybrid", "two-box EBM + MLP, \"quoted\" — ünïcode"
            |] with
            Seconds = 12.5
    }

/// The message of the `HybridException` that `f` raises.
let private raises (f: unit -> unit) : string =
    let e = Expect.throwsC f id
    Expect.isTrue (e :? HybridException) $"a HybridException, not {e.GetType().Name}: {e.Message}"
    e.Message

let tests =
    testList "Tasks.Format" [
        test "a task's canonical JSON and id are pinned (SHA-256 of the canonical text, first 16 hex digits)" {
            let t = TaskSpec.create "synthetic" "tiny" "a" 1

            Expect.equal
                (TaskSpec.canonical t)
                """{"experiment":"synthetic","settings":"tiny","model":"a","seed":1}"""
                "canonical"
            // python3: hashlib.sha256(canonical.encode()).hexdigest()[:16]
            Expect.equal (TaskSpec.id t) "12008613a685eb9d" "id"
            let withOptions = (sample ()).Task

            Expect.equal
                (TaskSpec.canonical withOptions)
                """{"experiment":"energy-balance","settings":"quick","model":"hybrid","seed":3,"share":0.5,"member":2}"""
                "options in a fixed order, absent ones left out"

            Expect.equal (TaskSpec.id withOptions) "81bb8f887454d653" "id with options"
            Expect.notEqual (TaskSpec.id { t with Seed = 2 }) (TaskSpec.id t) "another seed, another id"
        }

        test "a task result reads back exactly: rows, NaN and infinities, series, texts, task and time" {
            let r = sample ()
            let back = TaskResult.ofJson "sample.json" (TaskResult.toJson r)
            Expect.equal back.Id r.Id "id"
            Expect.equal back.Task r.Task "task"
            Expect.equal back.Seconds 12.5 "seconds"
            Expect.equal back.Texts r.Texts "texts"
            Expect.equal back.Rows[0] r.Rows[0] "0.1 + 0.2 to the last bit"
            Expect.isTrue (Double.IsNaN back.Rows[1].Value) "NaN"
            Expect.equal { back.Rows[1] with Value = 0.0 } { r.Rows[1] with Value = 0.0 } "the NaN row's fields"
            let name, values = back.Series[0]
            Expect.equal name "simulated:hybrid" "series name"

            Expect.equal
                (values |> Array.map BitConverter.DoubleToInt64Bits)
                ((snd r.Series[0]) |> Array.map BitConverter.DoubleToInt64Bits)
                "series bit for bit"

            Expect.stringContains (TaskResult.toJson r) "\"format\": \"hybrid-task-result 1\"" "format field"
        }

        test "a result of another format says which Hybrid writes it" {
            let json =
                (TaskResult.toJson (sample ())).Replace("hybrid-task-result 1", "hybrid-task-result 2")

            let e = raises (fun () -> TaskResult.ofJson "results/x.json" json |> ignore)

            Expect.equal
                e
                "results/x.json: is in format \"hybrid-task-result 2\", written by a newer version of Hybrid; this version reads \"hybrid-task-result 1\". Merge it with the Hybrid that wrote it, or run the task again (`hybrid sweep run --retry` after deleting the file)."
                "message"
        }

        test "a result whose id does not match its task is refused" {
            let json =
                (TaskResult.toJson (sample ())).Replace("\"seed\": 3,\n    \"share\"", "\"seed\": 4,\n    \"share\"")

            Expect.notEqual json (TaskResult.toJson (sample ())) "the task's seed was edited"

            let e = raises (fun () -> TaskResult.ofJson "r.json" json |> ignore)

            Expect.stringContains e "has id 81bb8f887454d653 but its task" "names the id"
            Expect.stringContains e "the file was edited or copied from another task" "says why"
        }

        test "an atomic write leaves the whole text and no temporary file" {
            let folder = temporaryFolder ()
            let path = Path.Combine(folder, "sub", "r.json")
            AtomicFile.write path "first"
            AtomicFile.write path "second, longer"
            Expect.equal (File.ReadAllText path) "second, longer" "replaced whole"

            Expect.equal
                (Directory.GetFiles(Path.Combine(folder, "sub")) |> Array.map Path.GetFileName)
                [| "r.json" |]
                "no temporary file"

            Expect.isTrue
                (AtomicFile.isTemporary $".r.json.tmp-{Environment.ProcessId}")
                "the temporary name is recognised"

            Directory.Delete(folder, true)
        }

        test "a long-format results file reads back every row exactly; the share is in the split; bad cells are named" {
            let folder = temporaryFolder ()
            let path = Path.Combine(folder, "case-results.csv")
            let r = sample ()
            // A model name with a comma and a quote, and a negative seed, must survive the file as they are.
            let odd = {
                r.Rows[0] with
                    Model = "MLP C(t, dose) \"wide\""
                    Seed = -4
                    Value = -1e-300
            }

            let result = {
                r with
                    Rows = Array.append r.Rows [| odd |]
            }

            Experiment.writeResults "case" folder (Experiment.resultRows [ result ])
            Expect.equal (Experiment.resultsFile "case") "case-results.csv" "file name"
            let back = ResultRow.readCsv path
            Expect.equal back.Length 3 "three rows"

            Expect.equal
                [ for b in back -> b.Case, b.Model, b.Split, b.Metric, b.Seed ]
                [
                    for x in result.Rows -> x.Case, x.Model, x.Split + ", share 0.5", x.Metric, x.Seed
                ]
                "names, the share in the split, seeds"

            Expect.equal back[0].Value (0.1 + 0.2) "round trip of 0.30000000000000004"
            Expect.isTrue (Double.IsNaN back[1].Value) "NaN"
            Expect.equal back[2].Value -1e-300 "tiny negative"

            File.WriteAllText(path, "case,model,split,metric,seed,value\nc,m,test,mse,1.5,2\n")

            Expect.stringContains
                (raises (fun () -> ResultRow.readCsv path |> ignore))
                "line 2: '1.5' is not a whole-number seed"
                "seed"

            File.WriteAllText(path, "case,model,split,metric,seed,value\nc,m,test,mse,1,x\n")
            Expect.stringContains (raises (fun () -> ResultRow.readCsv path |> ignore)) "'x' is not a number" "value"
            File.WriteAllText(path, "case,model,split,metric,value\nc,m,test,mse,1\n")
            Expect.stringContains (raises (fun () -> ResultRow.readCsv path |> ignore)) "has no column 'seed'" "column"
            // Tasks without rows (a section run as one task) write no file.
            File.Delete path
            Experiment.writeResults "case" folder (Experiment.resultRows [ { r with Rows = [||] } ])
            Expect.isFalse (File.Exists path) "no rows, no file"
            Directory.Delete(folder, true)
        }
    ]

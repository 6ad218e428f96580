module Hybrid.Interactive.Tests.ParameterTableTests

open Expecto
open Hybrid
open Hybrid.Compiler
open Hybrid.Interactive

let tests =
    testList "ParameterTable" [
        test "a compiled simulator's parameters: name, constraint, value, training, cells" {
            let simulator = Compiler.compile Compiler.defaults Samples.logistic

            Expect.equal
                (ParameterTable.html simulator.Parameters)
                ("<table class=\"hybrid-parameters\">\n"
                 + "<thead><tr><th>parameter</th><th>constraint</th><th>value</th><th>training</th><th>cells</th></tr></thead>\n"
                 + "<tbody>\n"
                 + "<tr><td>r</td><td>positive</td><td>0.5</td><td>learnable</td><td>1</td></tr>\n"
                 + "<tr><td>K</td><td>in [0.5, 5]</td><td>2</td><td>fixed</td><td>1</td></tr>\n"
                 + "</tbody>\n</table>")
                "parameter table"
        }

        test "the table follows the values set" {
            let simulator = Compiler.compile Compiler.defaults Samples.logistic
            (simulator.Param "r").Set 1.25

            Expect.equal
                (ParameterTable.text simulator.Parameters)
                "r = 1.25 (positive, learnable)\nK = 2 (in [0.5, 5], fixed)"
                "parameter lines"
        }

        test "a simulator shows its description above the table" {
            let simulator = Compiler.compile Compiler.defaults Samples.decay
            let html = SimulatorDisplay.html simulator

            Expect.equal
                html
                ("<div class=\"hybrid-simulator\">\n<pre>"
                 + System.Net.WebUtility.HtmlEncode simulator.Display
                 + "</pre>\n"
                 + ParameterTable.html simulator.Parameters
                 + "\n</div>")
                "simulator HTML"

            Expect.stringContains
                html
                "<tr><td>k</td><td>positive</td><td>0.5</td><td>learnable</td><td>1</td></tr>"
                "k's row"

            Expect.stringStarts simulator.Display "Simulator of model 'decay'" "description's first line"
        }
    ]

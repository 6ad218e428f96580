module Hybrid.Interactive.Tests.ModelDisplayTests

open Expecto
open Hybrid.Interactive

let tests =
    testList "ModelDisplay" [
        test "the equations are Print.Latex's aligned block inside $$, & escaped" {
            Expect.equal
                (ModelDisplay.latexBlock Samples.decay)
                "$$\\begin{aligned}\n\\frac{\\partial u}{\\partial t} &amp;= -k \\, u\n\\end{aligned}$$"
                "LaTeX block"
        }

        test "the HTML names the model, holds the equations and the text form, then loads MathJax" {
            let lines = (ModelDisplay.html Samples.decay).Split '\n'

            Expect.equal
                (lines |> Array.take 9 |> List.ofArray)
                [
                    "<div class=\"hybrid-model\">"
                    "<div><strong>model decay</strong></div>"
                    "<div class=\"hybrid-equations\">$$\\begin{aligned}"
                    "\\frac{\\partial u}{\\partial t} &amp;= -k \\, u"
                    "\\end{aligned}$$</div>"
                    "<details><summary>text form</summary><pre>model decay"
                    "domain point"
                    "field u"
                    "param k = 0.5 positive"
                ]
                "head of the HTML"

            Expect.equal lines[11] "</pre></details>" "end of the text form"
            Expect.equal lines[12] "</div>" "end of the model"
            Expect.equal lines[13] "<script type=\"text/javascript\">" "MathJax loader"
            Expect.equal (Array.last lines) "</script>" "last line"
        }

        test "the plain text is the Unicode text form" {
            Expect.equal
                (ModelDisplay.text Samples.decay)
                "model decay\ndomain point\nfield u\nparam k = 0.5 positive\n∂u/∂t = −k u\ninitial u = 1\n"
                "text form"
        }
    ]

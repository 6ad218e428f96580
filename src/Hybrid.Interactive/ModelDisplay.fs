namespace Hybrid.Interactive

open Hybrid

/// A model as a notebook shows it: its equations typeset from LaTeX (MathJax), and its text form.
[<RequireQualifiedAccess>]
module ModelDisplay =

    /// Loads MathJax 3 where the page has none, and typesets the new output where it has one (MathJax 2 in
    /// classic Jupyter, 3 elsewhere).
    let private mathJax =
        """<script type="text/javascript">
(function () {
  var mj = window.MathJax;
  if (mj && mj.typesetPromise) { mj.typesetPromise(); return; }
  if (mj && mj.Hub) { mj.Hub.Queue(["Typeset", mj.Hub]); return; }
  if (document.getElementById("hybrid-mathjax")) { return; }
  var s = document.createElement("script");
  s.id = "hybrid-mathjax";
  s.async = true;
  s.src = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js";
  document.head.appendChild(s);
})();
</script>"""

    /// The model's text form (`Print.model Notation.Unicode`): what `text/plain` shows.
    let text (m: Model) : string = Print.model Notation.Unicode m

    /// The model's equations as a display-math block `$$\begin{aligned} … \end{aligned}$$`
    /// (`Print.model Notation.Latex`), HTML-escaped.
    let latexBlock (m: Model) : string =
        "$$" + Html.escape (Print.model Notation.Latex m) + "$$"

    /// The model as HTML: its name, its equations typeset by MathJax, its whole text form in a closed
    /// `<details>` element, and the script that loads MathJax where the page lacks it.
    let html (m: Model) : string =
        String.concat "\n" [
            "<div class=\"hybrid-model\">"
            $"<div><strong>model {Html.escape m.Name}</strong></div>"
            $"<div class=\"hybrid-equations\">{latexBlock m}</div>"
            $"<details><summary>text form</summary><pre>{Html.escape (text m)}</pre></details>"
            "</div>"
            mathJax
        ]

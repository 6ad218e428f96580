/// Writes the case-study report: summary.md (tables), CSV files of every number, SVG charts.
module Hybrid.Models.Report.CaseReport

/// Placeholder.
let version = 1

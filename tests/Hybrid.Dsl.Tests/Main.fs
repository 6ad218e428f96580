module Hybrid.Dsl.Tests.Main

open Expecto

[<EntryPoint>]
let main argv =
    testList "Hybrid.Dsl" [
        ErrorsTests.tests
        UnitsTests.tests
        SymbolicTests.tests
        DeepExprTests.tests
        PointwiseTests.tests
        ParserTests.tests
        BuilderTests.tests
        ExamplesTests.tests
        MalformedTests.tests
        CharactersTests.tests
        CharactersTests.numberTests
        StatementsTests.tests
        SizeTests.tests
        FuzzTests.tests
        PropertyTests.tests
        ChecksTests.tests
        OperatorRulesTests.tests
        AdvectionSyntaxTests.tests
        LargeInputTests.tests
        FixSyntaxTests.tests
        DiagnosticTests.tests
        FieldClosureTests.tests
    ]
    |> Hybrid.Tests.Summary.run argv

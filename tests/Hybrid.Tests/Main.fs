module Hybrid.Tests.Main

open Expecto

[<EntryPoint>]
let main argv =
    // Load libtorch the Hybrid way before any test touches TorchSharp directly: TorchSharp's own first load
    // fails on this kind of machine and leaves `torch` unusable for the rest of the process.
    Hybrid.Engine.init ()

    // Hidden mode for the large-model test: run the stages in this process (which may crash) and exit.
    if argv.Length = 2 && argv[0] = Compiler.LargeModelTests.ChildFlag then
        exit (Compiler.LargeModelTests.child (int argv[1]))

    // Hidden mode for the kill-and-resume test: train in this process (the one the test kills) and exit.
    if argv.Length = 3 && argv[0] = Training.KillResumeTests.ChildFlag then
        exit (Training.KillResumeTests.child argv[1] (int argv[2]))

    // One test at a time: see Summary.runOneAtATime for why tests that use TorchSharp must not overlap.
    // The tests that change process-wide settings (default dtype, seeds) or measure the process's memory
    // come first.
    testList "Hybrid" [
        Engine.EngineTests.tests
        Numerics.RolloutTests.exclusiveTests
        Demos.HeatRecoveryTests.tests
        Engine.ElfVersionsTests.tests
        Engine.TensorArithmeticTests.tests
        Engine.TorchGuardTests.tests
        Numerics.OperatorTests.tests
        Numerics.ConvergenceTests.tests
        Numerics.AdvectionTests.tests
        Numerics.SpectraTests.tests
        Numerics.RolloutTests.tests
        Numerics.RolloutArgumentsTests.tests
        Numerics.ParameterTests.tests
        Numerics.StabilityTests.tests
        Numerics.AdaptiveTests.tests
        Numerics.StiffTests.tests
        Numerics.ImexAdaptiveTests.tests
        Numerics.GridRosenbrockTests.tests
        Numerics.EventTests.tests
        Numerics.StateEventTests.tests
        Compiler.CompilerTests.tests
        Compiler.EllipticTests.tests
        Compiler.BackendTests.tests
        Compiler.FieldClosureTests.tests
        Compiler.SimulatorTextTests.tests
        Compiler.LargeModelTests.tests
        Kernels.SimdKernelTests.tests
        Kernels.ThreadedKernelTests.tests
        Kernels.ArakawaKernelTests.tests
        Kernels.KernelTests.tests
        Kernels.DerivativeTests.tests
        Kernels.KernelCostTests.tests
        Kernels.AdaptiveKernelTests.tests
        Kernels.AdaptiveGridKernelTests.tests
        Kernels.RosenbrockKernelTests.tests
        Kernels.ImexKernelTests.tests
        Kernels.FieldwiseKernelTests.tests
        Kernels.NetworkCallTests.tests
        Kernels.RosenbrockKeepingTests.tests
        Kernels.ForwardTangentTests.tests
        Kernels.Float32KernelTests.tests
        Kernels.StatePoolTests.tests
        Kernels.BiCgStabTests.tests
        Kernels.OffGridKernelTests.tests
        Training.UdeTests.tests
        Training.ConvolutionTests.tests
        Training.ConvLstmTests.tests
        Training.FusionTests.tests
        Training.FusedRolloutTests.tests
        Training.TrainerTests.tests
        Training.LbfgsTests.tests
        Training.InitialFitTests.tests
        Training.CovarianceTests.tests
        Training.AdamTests.tests
        Training.CheckpointTests.tests
        Training.KillResumeTests.tests
        Training.UncertaintyTests.tests
        Training.CsvTests.tests
        Training.DataTests.tests
        Training.LossTests.tests
        Training.ProgressTests.tests
        Baselines.BaselinesTests.tests
        Cases.CaseUncertaintyTests.tests
        Cases.PredatorPreyTests.tests
        Cases.PharmacokineticsTests.tests
        Cases.EnergyBalanceTests.tests
        Cases.Lorenz96Tests.tests
        Cases.TumourTests.tests
        Cases.ClimateTests.tests
        Cases.ClimateFileTests.tests
        Cases.ClimateMlTests.tests
        Report.StatisticsTests.tests
        Report.ModelTableTests.tests
        Report.AblationTableTests.tests
        Report.ClaimsTests.tests
        Experiments.DataEfficiencyTests.tests
        Report.ReportCsvTests.tests
        Tasks.TaskFormatTests.tests
        Tasks.SweepFolderTests.tests
        Tasks.PartRowsTests.tests
        Tasks.CaseTasksTests.tests
        Tasks.Lorenz96TasksTests.tests
        Tasks.ClimateTasksTests.tests
        Tuning.TuningTests.tests
        Tuning.CaseTuningTests.tests
    ]
    |> Summary.runOneAtATime argv

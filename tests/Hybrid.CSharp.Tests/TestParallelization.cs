using Xunit;

// Test classes run one after another, not in parallel: TorchSharp 0.107 hands libtorch temporary Scalars
// (in `t * 2.0`, in `a + b`, inside its optimisers) that nothing keeps alive during the native call, so a
// garbage collection started by a test on another thread can free one mid-call. See Summary.runOneAtATime
// in tests/Common for the F# side.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

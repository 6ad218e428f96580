/// How glibc's allocator treats the native memory of tensors. By default glibc maps blocks from 128 KiB up afresh
/// (its threshold grows only with the sizes freed) and returns the free top of its heap to the system once it passes
/// twice that threshold; a training loop, which allocates and frees the same few hundred megabytes of autograd graphs
/// at every step, then pays a page fault for every 4 KiB page of them again at every step. Measured on the climate
/// model's CNN closures (32², 20 RK4 steps, forward + backward, float64): a rollout keeping 80 stages' graphs took
/// 1.9× as long as one keeping 20, and 1.0× once the heap keeps its memory. `Engine.init` therefore keeps freed memory
/// in the heap (blocks below 32 MiB, glibc's largest threshold, come from the heap, and its free top is never given
/// back): the process holds on to its peak native memory, as jemalloc-style allocators do. HYBRID_NATIVE_HEAP=system
/// keeps glibc's own behaviour; so does a GLIBC_TUNABLES setting of glibc.malloc.
module internal Hybrid.Native.NativeHeap

open System
open System.Runtime.InteropServices

[<DllImport("libc", EntryPoint = "mallopt")>]
extern int private mallopt(int param, int value)

/// glibc's M_TRIM_THRESHOLD and M_MMAP_THRESHOLD (malloc.h).
[<Literal>]
let private TrimThreshold = -1

[<Literal>]
let private MmapThreshold = -3

/// glibc's largest mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX): larger values are refused.
[<Literal>]
let MmapThresholdBytes = 33554432

/// Whether the environment asks for glibc's own policy: HYBRID_NATIVE_HEAP=system, or malloc tunables of its own.
let private leftToGlibc () =
    let own = Environment.GetEnvironmentVariable "HYBRID_NATIVE_HEAP"
    let tunables = Environment.GetEnvironmentVariable "GLIBC_TUNABLES"

    String.Equals(own, "system", StringComparison.OrdinalIgnoreCase)
    || (not (isNull tunables) && tunables.Contains "glibc.malloc.")

/// Keeps freed native memory in glibc's heap (see the module's comment); true where it was set, false where the
/// environment leaves it to glibc or the C library is not glibc (mallopt missing or refusing).
let retain () : bool =
    if not (OperatingSystem.IsLinux()) || leftToGlibc () then
        false
    else
        try
            mallopt (MmapThreshold, MmapThresholdBytes) = 1
            && mallopt (TrimThreshold, Int32.MaxValue) = 1
        with
        | :? EntryPointNotFoundException
        | :? DllNotFoundException -> false

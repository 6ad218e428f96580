namespace Hybrid.Compiler

open TorchSharp

/// What an expression is evaluated against: the state, the parameter values θ, the time, the coordinates
/// (cell centres, or faces along one axis inside a flux coefficient).
type internal Ctx = {
    Fields: torch.Tensor[]
    Theta: torch.Tensor[]
    T: float
    Coords: torch.Tensor[]
}

namespace Hybrid.Compiler

open TorchSharp

/// What an expression is evaluated against: the state, the parameter values θ, the time, the coordinates
/// (cell centres, or faces along one axis inside a flux coefficient).
type internal Ctx = {
    Fields: torch.Tensor[]
    Theta: torch.Tensor[]
    T: float
    Coords: torch.Tensor[]
    /// Inside a flux coefficient on the faces along an axis: the cell-centred context this one was made from, and
    /// the axis (diagnostic fields are solved on the cells and averaged to these faces); None at the cell centres.
    Faces: (Ctx * int) option
}

namespace Hybrid

/// The small readers the statements share: numbers, whole numbers and sizes (`32 x 32`, `32x32`), names,
/// `[units]`, `[a, b]` bounds and the end of a statement.
module internal StatementReaders =

    open ExprParser

    /// Refuses anything but the end of a statement after `what`.
    let expectEnd (p: Cursor) (what: string) =
        let t = p.Peek

        if not (endOfStatement t) then
            let hint =
                match t.Tok with
                | Tok.Op "=" -> "; an equation's left side must be ∂u/∂t or du/dt"
                | _ -> ""

            failAt p t (sprintf "unexpected %s after %s%s" (describe t) what hint)

    /// Reads a number with an optional leading minus sign, for `what`.
    let signedNumber (p: Cursor) (what: string) : float =
        let neg =
            if isOp p.Peek "-" then
                p.Advance() |> ignore
                true
            else
                false

        let t = p.Advance()

        match t.Tok with
        | Tok.Number(v, _) -> if neg then -v else v
        | _ -> failAt p t (sprintf "expected a number for %s but found %s" what (describe t))

    /// Reads a whole number from 0 to 10⁸, for `what`.
    let integer (p: Cursor) (what: string) : int =
        let t = p.Advance()

        match t.Tok with
        | Tok.Number(v, true) when v >= 0.0 && v <= 1e8 -> int v
        | _ -> failAt p t (sprintf "expected a whole number for %s but found %s" what (describe t))

    /// True for the size separator 'x' or '×' (the lexer reads '×' as the operator '*').
    let isTimes (p: Cursor) (t: Token) =
        match t.Tok with
        | Tok.Ident "x" -> true
        | Tok.Op "*" -> p.Source[t.Offset] = '×'
        | _ -> false

    /// `32x32` lexes as the number 32 and the name `x32`: the count after the 'x', when `t` is such a name.
    let fusedCount (t: Token) : int option =
        match t.Tok with
        | Tok.Ident s when
            s.Length > 1
            && s.Length <= 9
            && s[0] = 'x'
            && s.Substring 1 |> Seq.forall (fun c -> c >= '0' && c <= '9')
            ->
            Some(int (s.Substring 1))
        | _ -> None

    /// Reads "x n", "× n" or "xn" after a first count, in `context` (e.g. "cells <nx> x <ny>").
    let byCount (p: Cursor) (context: string) (what: string) : int =
        let t = p.Advance()

        match fusedCount t with
        | Some k -> k
        | None when isTimes p t -> integer p what
        | None -> failAt p t (sprintf "expected 'x' (or '×') in '%s' but found %s" context (describe t))

    /// Reads the name of a new `what` (field, parameter, …), refusing the built-in function names.
    let name (p: Cursor) (what: string) : string =
        let t = p.Advance()

        match t.Tok with
        | Tok.Ident s when List.contains s reserved ->
            failAt p t (sprintf "'%s' is a built-in function name and cannot name a %s; choose another name" s what)
        | Tok.Ident s -> s
        | _ -> failAt p t (sprintf "expected the name of the %s but found %s" what (describe t))

    /// Reads optional units in brackets, `[m/s]`; None when no '[' follows.
    let units (p: Cursor) : Units option =
        let t = p.Peek

        if isOp t "[" then
            p.Advance() |> ignore
            let start = t.Offset + 1
            let mutable close = p.Peek

            while not (isOp close "]") && close.Tok <> Tok.Eof && close.Tok <> Tok.Newline do
                p.Advance() |> ignore
                close <- p.Peek

            if not (isOp close "]") then
                failAt p t "this '[' of the units is not closed; add ']' after the units"

            p.Advance() |> ignore
            let text = p.Source.Substring(start, close.Offset - start)

            match Units.tryParse text with
            | Ok u -> Some u
            | Error(msg, at) ->
                let line, col = SourceText.position p.Source (start + at)
                raise (SourceText.error p.Source line col msg)
        else
            None

    /// Reads two bounds `[a, b]` of `what`.
    let bracketPair (p: Cursor) (what: string) : float * float =
        expectOp p "[" (sprintf "to open %s" what)
        let a = signedNumber p what
        expectOp p "," (sprintf "between the two bounds of %s" what)
        let b = signedNumber p what
        expectOp p "]" (sprintf "to close %s" what)
        a, b

namespace Hybrid

/// Physical units as written by the user: a product of unit symbols with integer exponents, e.g. `m^2/s` is
/// `[ ("m", 2); ("s", -1) ]`. Symbols keep the user's spelling (so `mg/L` prints back as `mg/L`); their
/// dimension (length, time, mass, amount, temperature, current, luminosity) comes from a built-in table
/// and is what dimensional analysis compares. Scale factors (mg vs kg) are deliberately ignored.
type Units = {
    /// Unit symbols with their non-zero integer exponents; canonical order: positive exponents first, then
    /// negative ones, each sorted by symbol (so `mol/(m^3*s)` and `mol/(s*m^3)` are equal).
    Factors: (string * int) list
}

/// The dimension of a quantity: exponents of the SI base dimensions, keyed by base symbol
/// (`L` length, `T` time, `M` mass, `N` amount, `Θ` temperature, `I` current, `J` luminosity).
/// The empty map is dimensionless.
type Dimension = Map<string, int>

/// Units: parsing `m^2/s`, printing, and the dimension of a unit expression.
[<RequireQualifiedAccess>]
module Units =

    /// Dimensionless (no factors).
    let one: Units = { Factors = [] }

    let private table: (string * (string * int) list) list = [
        "1", []
        "m", [ "L", 1 ]
        "cm", [ "L", 1 ]
        "mm", [ "L", 1 ]
        "um", [ "L", 1 ]
        "µm", [ "L", 1 ]
        "km", [ "L", 1 ]
        "L", [ "L", 3 ]
        "mL", [ "L", 3 ]
        "dL", [ "L", 3 ]
        "s", [ "T", 1 ]
        "min", [ "T", 1 ]
        "h", [ "T", 1 ]
        "day", [ "T", 1 ]
        "d", [ "T", 1 ]
        "yr", [ "T", 1 ]
        "kg", [ "M", 1 ]
        "g", [ "M", 1 ]
        "mg", [ "M", 1 ]
        "ug", [ "M", 1 ]
        "µg", [ "M", 1 ]
        "mol", [ "N", 1 ]
        "mmol", [ "N", 1 ]
        "umol", [ "N", 1 ]
        "µmol", [ "N", 1 ]
        "K", [ "Θ", 1 ]
        "A", [ "I", 1 ]
        "cd", [ "J", 1 ]
        "N", [ "M", 1; "L", 1; "T", -2 ]
        "J", [ "M", 1; "L", 2; "T", -2 ]
        "W", [ "M", 1; "L", 2; "T", -3 ]
        "Pa", [ "M", 1; "L", -1; "T", -2 ]
        "cells", []
        "cell", []
        "ppm", []
    ]

    /// The unit symbols Hybrid knows, in table order.
    let knownSymbols: string list = table |> List.map fst

    /// True when `symbol` is a known unit symbol.
    let isKnown (symbol: string) : bool =
        table |> List.exists (fun (s, _) -> s = symbol)

    let private normalize (factors: (string * int) list) : (string * int) list =
        let order = factors |> List.map fst |> List.distinct

        order
        |> List.map (fun s -> s, factors |> List.sumBy (fun (s', e) -> if s' = s then e else 0))
        |> List.filter (fun (s, e) -> e <> 0 && s <> "1")
        |> List.sortWith (fun (s1, e1) (s2, e2) ->
            match compare (e1 < 0) (e2 < 0) with
            | 0 -> System.String.CompareOrdinal(s1, s2)
            | c -> c)

    /// Builds units from factors, merging repeated symbols, dropping zero exponents, in canonical order.
    let ofFactors (factors: (string * int) list) : Units = { Factors = normalize factors }

    /// The product of two units.
    let mul (a: Units) (b: Units) : Units = ofFactors (a.Factors @ b.Factors)

    /// The quotient of two units.
    let div (a: Units) (b: Units) : Units =
        ofFactors (a.Factors @ (b.Factors |> List.map (fun (s, e) -> s, -e)))

    /// The dimension of `units`. Fails with `ModelException` for an unknown symbol.
    let dimension (units: Units) : Dimension =
        units.Factors
        |> List.collect (fun (s, e) ->
            match table |> List.tryFind (fun (s', _) -> s' = s) with
            | Some(_, dims) -> dims |> List.map (fun (d, k) -> d, k * e)
            | None ->
                raise (
                    ModelException(
                        sprintf
                            "Unknown unit symbol '%s'. Use one of: %s (combine with *, / and ^, e.g. m^2/s)."
                            s
                            (String.concat ", " knownSymbols)
                    )
                ))
        |> List.groupBy fst
        |> List.map (fun (d, xs) -> d, List.sumBy snd xs)
        |> List.filter (fun (_, k) -> k <> 0)
        |> Map.ofList

    /// Prints units in ASCII, e.g. `m^2/s`, `mol/m^3`, `1/s`, `1` when dimensionless.
    let format (u: Units) : string =
        let pos = u.Factors |> List.filter (fun (_, e) -> e > 0)
        let neg = u.Factors |> List.filter (fun (_, e) -> e < 0)

        let part (s, e) =
            let e = abs e
            if e = 1 then s else sprintf "%s^%d" s e

        let num =
            if pos.IsEmpty then
                "1"
            else
                pos |> List.map part |> String.concat "*"

        match neg with
        | [] -> num
        | [ one ] -> num + "/" + part one
        | many -> num + "/(" + (many |> List.map part |> String.concat "*") + ")"

    /// Prints a dimension in SI base units, e.g. `m^2/s`, `mol/(m^3*s)`; `1 (dimensionless)` when empty.
    let formatDimension (d: Dimension) : string =
        if d.IsEmpty then
            "1 (dimensionless)"
        else
            let si = [ "M", "kg"; "L", "m"; "N", "mol"; "T", "s"; "Θ", "K"; "I", "A"; "J", "cd" ]

            let factors =
                si
                |> List.choose (fun (dim, unit) -> d.TryFind dim |> Option.map (fun e -> unit, e))

            format { Factors = factors }

    /// Parses units such as `m^2/s`, `mol/m^3`, `1/s`, `mg/L`, `kg*m/s^2`, `m^2 s^-1` or `mol/(m^3*s)`.
    /// Returns `Error (message, offset)` with a 0-based offset into `text` on failure; never throws.
    let tryParse (text: string) : Result<Units, string * int> =
        let n = text.Length
        let mutable i = 0
        let mutable err: (string * int) option = None
        let mutable nesting = 0

        let fail msg at =
            if err.IsNone then
                err <- Some(msg, at)

        let skip () =
            while i < n && (text[i] = ' ' || text[i] = '\t') do
                i <- i + 1

        let isSymChar c =
            System.Char.IsLetter c || c = 'µ' || c = '°'

        let readInt () =
            skip ()
            let start = i

            if i < n && (text[i] = '-' || text[i] = '+') then
                i <- i + 1

            while i < n && System.Char.IsDigit text[i] do
                i <- i + 1

            match System.Int32.TryParse(text.Substring(start, i - start)) with
            | true, v -> v
            | _ ->
                fail "expected an integer exponent after '^'" start
                1

        // factor := symbol ['^' int] | '1' | '(' product ')'
        // product := factor (('*' | '·' | '/' | ' ') factor)*
        let rec product () : (string * int) list =
            let mutable acc = factor ()
            let mutable go = true

            while go && err.IsNone do
                skip ()

                if i < n && (text[i] = '*' || text[i] = '·') then
                    i <- i + 1
                    acc <- acc @ factor ()
                elif i < n && text[i] = '/' then
                    i <- i + 1
                    acc <- acc @ (factor () |> List.map (fun (s, e) -> s, -e))
                elif i < n && (isSymChar text[i] || text[i] = '(') then
                    acc <- acc @ factor ()
                else
                    go <- false

            acc

        and factor () : (string * int) list =
            skip ()

            let baseFactors =
                if i < n && text[i] = '(' then
                    i <- i + 1
                    nesting <- nesting + 1

                    if nesting > 20 then
                        fail "units nested more than 20 levels deep" i

                    let inner = if err.IsNone then product () else []
                    nesting <- nesting - 1
                    skip ()

                    if i < n && text[i] = ')' then
                        i <- i + 1
                    else
                        fail "expected ')' to close the unit group" i

                    inner
                elif i < n && text[i] = '1' then
                    i <- i + 1
                    []
                elif i < n && isSymChar text[i] then
                    let start = i

                    while i < n && isSymChar text[i] do
                        i <- i + 1

                    let s = text.Substring(start, i - start)

                    if not (isKnown s) then
                        fail
                            (sprintf "unknown unit symbol '%s'; known symbols: %s" s (String.concat ", " knownSymbols))
                            start

                    [ s, 1 ]
                else
                    fail "expected a unit symbol such as m, s, kg, mol or 1" i
                    []

            skip ()

            if i < n && text[i] = '^' then
                i <- i + 1
                let e = readInt ()
                baseFactors |> List.map (fun (s, k) -> s, k * e)
            else
                baseFactors

        let result = product ()
        skip ()

        if err.IsNone && i < n then
            fail (sprintf "unexpected '%c' in units" text[i]) i

        match err with
        | Some e -> Error e
        | None -> Ok(ofFactors result)

    /// Parses units (see `tryParse`); raises `ModelException` naming the problem on failure.
    let parse (text: string) : Units =
        match tryParse text with
        | Ok u -> u
        | Error(msg, at) ->
            raise (ModelException(sprintf "Cannot read units '%s' at position %d: %s." text (at + 1) msg))

namespace Hybrid

/// "Did you mean" suggestions for misspelt names: a bounded edit distance (time and memory independent of how
/// long the names are) and look-alike characters named by code point, so that a suggestion never looks
/// identical to what was typed.
module internal Suggest =

    /// Names longer than this are never compared (no suggestion).
    [<Literal>]
    let MaxLength = 64

    /// The largest edit distance that still gives a suggestion.
    [<Literal>]
    let MaxDistance = 2

    /// The Levenshtein distance between `a` and `b` when it is at most `bound`, else None. Only a band of
    /// 2·bound + 1 diagonals is computed, in two rows: O(bound · length) time, O(length) memory.
    let distanceAtMost (bound: int) (a: string) (b: string) : int option =
        let n = a.Length
        let m = b.Length

        if abs (n - m) > bound then
            None
        else
            let inf = bound + 1
            let mutable prev = Array.init (m + 1) (fun j -> if j <= bound then j else inf)
            let mutable cur = Array.create (m + 1) inf
            let mutable alive = true
            let mutable i = 1

            while alive && i <= n do
                let lo = max 1 (i - bound)
                let hi = min m (i + bound)
                cur[0] <- (if i <= bound then i else inf)

                if lo > 1 then
                    cur[lo - 1] <- inf

                let mutable rowMin = if lo = 1 then cur[0] else inf

                for j in lo..hi do
                    let cost = if a[i - 1] = b[j - 1] then 0 else 1
                    let v = min (min (prev[j] + 1) (cur[j - 1] + 1)) (prev[j - 1] + cost)
                    cur[j] <- min v inf
                    rowMin <- min rowMin cur[j]

                if hi < m then
                    cur[hi + 1] <- inf

                if rowMin > bound then
                    alive <- false

                let t = prev
                prev <- cur
                cur <- t
                i <- i + 1

            if alive && prev[m] <= bound then Some prev[m] else None

    /// The look-alike and invisible characters of a name, described: "U+0430 CYRILLIC SMALL LETTER A, which
    /// looks like 'a'". Empty when the name has none.
    let private lookAlikes (name: string) : string list =
        name
        |> Seq.distinct
        |> Seq.choose (fun c ->
            match Confusables.tryLooseLookAlike c with
            | Some(_, a) -> Some(sprintf "%s, which looks like '%c'" (Confusables.describe c) a)
            | None ->
                Confusables.tryInvisible c
                |> Option.map (fun _ -> sprintf "%s, which is invisible" (Confusables.describe c)))
        |> Seq.truncate 3
        |> List.ofSeq

    /// A sentence to append to an "undefined name" message (with a leading space), or "" when nothing fits:
    /// - when `name` differs from a candidate only by look-alike or invisible characters, it names those
    ///   characters by code point and Unicode name;
    /// - otherwise the closest candidate within edit distance 2 (case-insensitive), comparing only names of at
    ///   most 64 characters.
    let didYouMean (name: string) (candidates: string list) : string =
        if isNull name then
            ""
        else
            let odd = lookAlikes name
            let sk = Confusables.skeleton name
            let others = candidates |> List.filter (fun c -> not (isNull c) && c <> name)

            match odd with
            | _ :: _ ->
                let chars = String.concat "; " odd

                match others |> List.tryFind (fun c -> Confusables.skeleton c = sk) with
                | Some c ->
                    sprintf
                        " '%s' contains %s. Retype the name with ASCII letters to refer to the declared '%s'."
                        name
                        chars
                        c
                | None -> sprintf " '%s' contains %s." name chars
            | [] ->
                match others |> List.tryFind (fun c -> Confusables.skeleton c = sk) with
                | Some c ->
                    sprintf
                        " The declared '%s' contains %s; refer to it with those characters."
                        c
                        (String.concat "; " (lookAlikes c))
                | None when name.Length > MaxLength -> ""
                | None ->
                    let key = name.ToLowerInvariant()

                    others
                    |> List.filter (fun c -> c.Length <= MaxLength && Confusables.skeleton c <> sk)
                    |> List.choose (fun c ->
                        distanceAtMost MaxDistance key (c.ToLowerInvariant())
                        |> Option.map (fun d -> c, d))
                    |> List.sortBy snd
                    |> List.tryHead
                    |> Option.map (fun (c, _) -> sprintf " Did you mean '%s'?" c)
                    |> Option.defaultValue ""

//! "Did you mean …?": the known name closest to a mistyped one.

/// The candidate most like `given` (Jaro–Winkler similarity, which favours
/// a shared start: `reply` → `replied`, `medpicc` → `meddpicc`), when it is
/// alike enough to be a slip rather than another name. Case is ignored;
/// ties go to the first candidate.
pub fn did_you_mean<'a, I>(given: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    const ALIKE: f64 = 0.85;
    let given = given.to_lowercase();
    let mut best: Option<(f64, &'a str)> = None;
    for c in candidates {
        let lower = c.to_lowercase();
        if lower == given {
            return None;
        }
        let score = strsim::jaro_winkler(&given, &lower);
        if score >= ALIKE && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `; did you mean `x`?` for a message, or nothing.
pub fn hint_suffix<'a, I>(given: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    did_you_mean(given, candidates)
        .map(|m| format!("; did you mean `{m}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_leaves_strangers_alone() {
        let kinds = ["contract_signed", "replied", "meeting_held"];
        assert_eq!(
            did_you_mean("contract_singed", kinds),
            Some("contract_signed")
        );
        assert_eq!(did_you_mean("reply", kinds), Some("replied"));
        assert_eq!(
            did_you_mean("medpicc", ["meddpicc", "bant"]),
            Some("meddpicc")
        );
        assert_eq!(did_you_mean("invoice_paid", kinds), None);
        assert_eq!(
            did_you_mean("replied", kinds),
            None,
            "an exact name is not a typo"
        );
    }
}

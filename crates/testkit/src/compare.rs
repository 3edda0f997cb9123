//! What the comparison module reports, as tests read it: the results of
//! `vrata_mirror_compare_total`, and its mismatch log lines.

/// Every value of the `result` label, in the catalogue's order. Written out
/// rather than taken from crates/core: names read from the code under test
/// could not catch one renamed there.
pub const RESULTS: [&str; 9] = [
    "match",
    "status_mismatch",
    "body_mismatch",
    "shadow_failed",
    "primary_incomplete",
    "not_compared",
    "overflow",
    "noise",
    "learning",
];

/// The results whose count (`count(result)`) is not zero, in [`RESULTS`]'
/// order: a short list a test compares with what it expects, so that any
/// other result counted fails it too.
pub fn nonzero_results<N: Copy + PartialOrd + Default>(count: impl Fn(&str) -> N) -> Vec<(&'static str, N)> {
    RESULTS
        .iter()
        .map(|result| (*result, count(result)))
        .filter(|(_, n)| *n > N::default())
        .collect()
}

/// The mismatch lines (`vrata-mirror: compare mismatch route=… differs=…`)
/// among `log`'s lines, in order.
pub fn mismatch_lines<'a>(log: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    log.into_iter()
        .filter(|line| line.contains("compare mismatch"))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonzero_results_keep_the_catalogue_order() {
        let counts = |r: &str| match r {
            "overflow" => 2.0,
            "match" => 1.0,
            _ => 0.0,
        };
        assert_eq!(nonzero_results(counts), [("match", 1.0), ("overflow", 2.0)]);
        assert_eq!(nonzero_results(|_| 0i64), []);
    }

    #[test]
    fn mismatch_lines_are_the_lines_that_say_so() {
        let log = "[info] vrata-mirror: compare mismatch route=api differs=status\n\
                   [info] something else\n\
                   [info] vrata-mirror: compare mismatch route=api differs=body";
        assert_eq!(
            mismatch_lines(log.lines()),
            [
                "[info] vrata-mirror: compare mismatch route=api differs=status",
                "[info] vrata-mirror: compare mismatch route=api differs=body"
            ]
        );
    }
}

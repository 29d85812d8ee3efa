//! Retention: which runs `runs prune` removes, the same rule for the local store and a remote.

use std::collections::BTreeMap;

use crate::model::Outcome;

/// Chooses what retention removes: runs that started before `cut_ns`, except the newest
/// `keep_green` passed runs of each group (pipeline and branch). `items` are
/// (group, started_ns, outcome); the answer is indexes into it.
pub fn select_for_prune<G: Ord + Clone>(
    items: &[(G, i64, Outcome)],
    cut_ns: i64,
    keep_green: usize,
) -> (Vec<usize>, usize) {
    let mut groups: BTreeMap<G, Vec<usize>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        groups.entry(it.0.clone()).or_default().push(i);
    }
    let mut remove = Vec::new();
    let mut kept_green = 0;
    for (_, mut idx) in groups {
        idx.sort_by_key(|&i| std::cmp::Reverse(items[i].1));
        let mut greens = 0;
        for i in idx {
            let (_, started, outcome) = &items[i];
            let protected = *outcome == Outcome::Passed && greens < keep_green;
            if *outcome == Outcome::Passed {
                greens += 1;
            }
            if *started < cut_ns {
                if protected {
                    kept_green += 1;
                } else {
                    remove.push(i);
                }
            }
        }
    }
    remove.sort_unstable();
    (remove, kept_green)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_the_newest_greens_of_each_group() {
        use Outcome::*;
        let items = vec![
            ("a", 10, Passed),
            ("a", 20, Failed),
            ("a", 30, Passed),
            ("a", 40, Passed),
            ("a", 100, Failed),
            ("b", 5, Passed),
            ("b", 6, Failed),
        ];
        // Cut at 50: everything but ("a",100) is old; keep 2 greens per group.
        let (rm, kept) = select_for_prune(&items, 50, 2);
        let removed: Vec<_> = rm.iter().map(|&i| (items[i].0, items[i].1)).collect();
        assert_eq!(removed, vec![("a", 10), ("a", 20), ("b", 6)]);
        assert_eq!(kept, 3);
        let (rm, _) = select_for_prune(&items, 50, 0);
        assert_eq!(rm.len(), 6);
        let (rm, _) = select_for_prune(&items, 0, 0);
        assert!(rm.is_empty());
    }
}

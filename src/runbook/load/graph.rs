//! The dependency graph between steps: `after` references to unknown steps, and cycles.

use std::collections::HashMap;
use std::ops::Range;

use super::{Check, closest};

/// An `after` reference, checked once every step id is known.
pub(super) struct AfterRef {
    pub(super) from: usize,
    pub(super) to: String,
    pub(super) span: Range<usize>,
}

impl Check<'_> {
    pub(super) fn after_refs(
        &mut self,
        order: &[String],
        node_of: &[Option<usize>],
        afters: &[AfterRef],
    ) {
        let node: HashMap<&str, usize> = order
            .iter()
            .enumerate()
            .map(|(n, id)| (id.as_str(), n))
            .collect();
        let mut edges: Vec<Vec<(usize, Range<usize>)>> = vec![Vec::new(); order.len()];
        for a in afters {
            match node.get(a.to.as_str()) {
                Some(&to) => {
                    if let Some(Some(from)) = node_of.get(a.from).copied() {
                        edges[from].push((to, a.span.clone()));
                    }
                }
                None => {
                    let mut hint =
                        "`after` lists the ids of steps that must be done first".to_string();
                    if let Some(best) = closest(&a.to, order.iter().map(String::as_str)) {
                        hint = format!("did you mean `{best}`? {hint}");
                    }
                    self.push(
                        format!("`after` refers to step `{}`, which does not exist", a.to),
                        a.span.clone(),
                        hint,
                    );
                }
            }
        }
        for (cycle, span) in find_cycles(&edges) {
            let names: Vec<&str> = cycle.iter().map(|n| order[*n].as_str()).collect();
            self.push(
                format!("dependency cycle through `after`: {}", names.join(" → ")),
                span,
                "steps in a cycle can never start; remove one of these `after` entries",
            );
        }
    }
}

/// Every cycle found by a depth-first search (iterative, so long chains cannot exhaust the
/// stack): the nodes of the cycle, first node repeated at the end, and the span of the edge that
/// closes it.
fn find_cycles(edges: &[Vec<(usize, Range<usize>)>]) -> Vec<(Vec<usize>, Range<usize>)> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Open,
        Done,
    }
    let mut state = vec![State::New; edges.len()];
    let mut found = Vec::new();
    for root in 0..edges.len() {
        if state[root] != State::New {
            continue;
        }
        state[root] = State::Open;
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(top) = stack.last_mut() {
            let (u, next) = *top;
            let Some((v, span)) = edges[u].get(next) else {
                state[u] = State::Done;
                stack.pop();
                continue;
            };
            top.1 += 1;
            match state[*v] {
                State::New => {
                    state[*v] = State::Open;
                    stack.push((*v, 0));
                }
                State::Open => {
                    let from = stack.iter().position(|(n, _)| n == v).unwrap_or(0);
                    let mut cycle: Vec<usize> = stack[from..].iter().map(|(n, _)| *n).collect();
                    cycle.push(*v);
                    found.push((cycle, span.clone()));
                }
                State::Done => {}
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::tests::{HEAD, errors, find};

    #[test]
    fn after_refers_to_missing_step() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"x\"\nafter = [\"a\", \"bb\"]\n"
        );
        let err = errors(&src);
        let d = err
            .diagnostics
            .iter()
            .find(|d| d.message.contains("does not exist"))
            .unwrap();
        assert_eq!(
            d.message,
            "`after` refers to step `bb`, which does not exist"
        );
        assert_eq!(d.line_column(&src), Some((13, 15)));
        assert!(d.hint.is_some());
    }

    #[test]
    fn dependency_cycle_is_named() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"x\"\nafter = [\"b\"]\n\n[[step]]\nid = \"b\"\nlane = \"it\"\nmanual = \"y\"\nafter = [\"a\"]\n"
        );
        let (msg, line, col, hint) = find(&src, "cycle");
        assert_eq!(msg, "dependency cycle through `after`: a → b → a");
        assert_eq!((line, col), (19, 10));
        assert!(hint.contains("remove"));
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let src =
            format!("{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"x\"\nafter = [\"a\"]\n");
        let (msg, ..) = find(&src, "cycle");
        assert_eq!(msg, "dependency cycle through `after`: a → a");
    }

    #[test]
    fn long_chains_do_not_exhaust_the_stack() {
        let mut src = String::from(HEAD);
        for n in 0..5000 {
            src.push_str(&format!(
                "[[step]]\nid = \"s{n}\"\nlane = \"it\"\nmanual = \"x\"\nafter = [\"s{}\"]\n",
                (n + 1) % 5000
            ));
        }
        let (msg, ..) = find(&src, "cycle");
        assert!(msg.starts_with("dependency cycle through `after`: s0 → s1 → s2"));
    }
}

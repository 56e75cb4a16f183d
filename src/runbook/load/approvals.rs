//! The `[approvals]` table: which roles must approve which steps, and the approvers' keys.

use std::ops::Range;

use super::{Check, Val};

pub(super) const APPROVALS_KEYS: &[&str] = &[
    "allowed_signers",
    "all",
    "destructive",
    "involuntary",
    "steps",
    "rollback",
];
const ROLES: &[&str] = &["manager", "hr", "security"];

impl Check<'_> {
    /// `steps`: the runbook's steps, each id with whether it is automated.
    pub(super) fn approvals_table(
        &mut self,
        key_span: Range<usize>,
        v: &Val<'_>,
        steps: &[(String, bool)],
    ) {
        let Some(t) = self.table(
            "approvals",
            v,
            "{ allowed_signers = \"approvers\", destructive = [\"security\"] }",
        ) else {
            return;
        };
        let mut signers = false;
        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            match key {
                "allowed_signers" => {
                    signers = true;
                    if let Some(s) = self.string(key, v, "\"approvers\"")
                        && s.trim().is_empty()
                    {
                        self.push(
                            "`allowed_signers` is empty",
                            v.span(),
                            "name an OpenSSH allowed_signers file, relative to the runbook, e.g. `allowed_signers = \"approvers\"`",
                        );
                    }
                }
                "all" | "destructive" | "involuntary" | "rollback" => self.roles(key, v),
                "steps" => {
                    let Some(per) = self.table(key, v, "{ delete-user = [\"security\"] }") else {
                        continue;
                    };
                    for (id, roles) in per.iter() {
                        let id: &str = id.get_ref();
                        match steps.iter().find(|(s, _)| s == id) {
                            Some((_, true)) => self.roles(id, roles),
                            Some((_, false)) => self.push(
                                format!("[approvals.steps] names `{id}`, a manual step"),
                                roles.span(),
                                "approvals gate automated steps only; a manual step is done by the person who confirms it",
                            ),
                            None => self.push(
                                format!("[approvals.steps] names `{id}`, which is not a step"),
                                roles.span(),
                                "use the id of an automated `[[step]]`",
                            ),
                        }
                    }
                }
                other => self.unknown_key(other, k.span(), "[approvals]", APPROVALS_KEYS),
            }
        }
        if !signers {
            let at = self.head(key_span);
            self.push(
                "[approvals] has no `allowed_signers`",
                at,
                "add `allowed_signers = \"approvers\"`: an OpenSSH allowed_signers file whose lines look like `security:carol@corp.example namespaces=\"offboard-approval\" ssh-ed25519 AAAA…`",
            );
        }
    }

    fn roles(&mut self, key: &str, v: &Val<'_>) {
        let Some(items) = self.string_list(key, v, "[\"security\"]") else {
            return;
        };
        for (role, span) in items {
            if !ROLES.contains(&role) {
                self.push(
                    format!("`{role}` is not an approval role"),
                    span,
                    format!("the roles are {}", ROLES.join(", ")),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{HEAD, errors, find, load};

    const STEPS: &str = r#"
[systems.sb]
kind = "sandbox"

[[step]]
id = "delete-user"
lane = "it"
system = "sb"
action = "delete_user"

[[step]]
id = "laptop"
lane = "facilities"
manual = "Collect the laptop"
"#;

    #[test]
    fn approvals_table_loads() {
        let src = format!(
            "{HEAD}{STEPS}\n[approvals]\nallowed_signers = \"approvers\"\ndestructive = [\"security\"]\ninvoluntary = [\"hr\"]\nsteps = {{ delete-user = [\"manager\"] }}\n"
        );
        let rb = load(&src).unwrap();
        let a = rb.file.approvals.unwrap();
        assert_eq!(a.allowed_signers, "approvers");
        assert_eq!(a.destructive, vec![crate::approval::Role::Security]);
        assert_eq!(a.steps["delete-user"], vec![crate::approval::Role::Manager]);
    }

    #[test]
    fn approvals_errors_point_at_the_value() {
        let src = format!(
            "{HEAD}{STEPS}\n[approvals]\ndestructive = [\"ciso\"]\nsteps = {{ laptop = [\"hr\"], nope = [\"hr\"] }}\ncolour = 1\n"
        );
        let e = errors(&src).to_string();
        assert!(e.contains("`ciso` is not an approval role"), "{e}");
        assert!(e.contains("names `laptop`, a manual step"), "{e}");
        assert!(e.contains("names `nope`, which is not a step"), "{e}");
        assert!(e.contains("unknown key `colour` in [approvals]"), "{e}");
        assert!(e.contains("[approvals] has no `allowed_signers`"), "{e}");
        // The role's own line and column are named.
        let (_, line, col, _) = find(&src, "`ciso`");
        let want = src.lines().position(|l| l.contains("ciso")).unwrap() + 1;
        assert_eq!((line, col), (want, 16));
    }
}

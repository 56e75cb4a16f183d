//! Runbook fuzzing (bounded, in CI): whatever bytes arrive, `runbook check` and the loader give
//! an error or a runbook, never a panic or a hang.

use std::path::Path;

use proptest::prelude::*;

/// Pieces of real runbooks, so the generator reaches deep into validation, not only the TOML
/// parser.
const FRAGMENTS: &[&str] = &[
    "[runbook]\n",
    "name = \"x\"\n",
    "legal_hold = true\n",
    "[inputs]\n",
    "manager = { prompt = \"m\", required = true }\n",
    "[systems.idp]\n",
    "[systems.app]\n",
    "kind = \"sandbox\"\n",
    "kind = \"scim\"\n",
    "kind = \"nope\"\n",
    "base_url = \"http://127.0.0.1:1/scim/v2\"\n",
    "token = { env = \"T\" }\n",
    "token = \"inline-secret\"\n",
    "max_concurrency = 0\n",
    "user = \"{{ user.email }}\"\n",
    "user = \"{{ user.nope }}\"\n",
    "[[step]]\n",
    "id = \"a\"\n",
    "id = \"b\"\n",
    "lane = \"it\"\n",
    "lane = \"moon\"\n",
    "system = \"idp\"\n",
    "system = \"missing\"\n",
    "action = \"suspend_user\"\n",
    "action = \"deactivate_user\"\n",
    "manual = \"Collect {{ user.asset_tag }}\"\n",
    "manual = \"{{ unclosed\"\n",
    "after = [\"a\"]\n",
    "after = [\"b\"]\n",
    "when = { type = \"involuntary\" }\n",
    "when = { type = [\"x\"], manager = \"y\" }\n",
    "deadline = \"effective+7d\"\n",
    "deadline = \"soon\"\n",
    "params = { path = \"team/x\" }\n",
    "params = { path = 3 }\n",
    "fields = [\"tracking\"]\n",
    "phase = \"close\"\n",
    "= = =\n",
    "[[[\n",
    "\"\\u0000\"\n",
    "a.b.c.d.e = 1\n",
];

fn check(source: String) {
    let _ =
        offboard::runbook::load_str(Path::new("fuzz.toml"), source).map_err(|e| e.render(false));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in any::<String>()) {
        check(s);
    }

    #[test]
    fn shuffled_runbook_fragments_never_panic(parts in proptest::collection::vec(0..FRAGMENTS.len(), 0..40)) {
        check(parts.into_iter().map(|i| FRAGMENTS[i]).collect());
    }

    #[test]
    fn mutated_valid_runbook_never_panics(
        at in 0usize..4000,
        byte in any::<u8>(),
        cut in 0usize..4000,
    ) {
        let base = include_str!("../../runbooks/demo.toml");
        let mut bytes = base.as_bytes().to_vec();
        let at = at % bytes.len();
        bytes[at] = byte;
        bytes.truncate(cut.max(at + 1).min(bytes.len()));
        check(String::from_utf8_lossy(&bytes).into_owned());
    }
}

#[test]
fn deep_nesting_and_huge_input_are_refused_quickly() {
    let deep = format!("x = {}1{}", "[".repeat(50_000), "]".repeat(50_000));
    check(deep);
    let tables = format!("x = {}{}", "{a=".repeat(20_000), "}".repeat(20_000));
    check(tables);
    let huge = "# padding\n".repeat(400_000);
    let err = offboard::runbook::load_str(Path::new("huge.toml"), huge);
    assert!(err.is_err());
}

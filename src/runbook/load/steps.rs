//! Checking each `[[step]]`: keys, lane and phase, the system and action or the manual task,
//! params against the action's spec, `when`, deadlines and templates.

use std::collections::HashMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::{
    AfterRef, Check, DEPARTURE_TYPES, LANES, PHASES, STEP_KEYS, Val, closest, is_ident,
    valid_deadline,
};
use crate::providers::{self, KindSpec};

impl Check<'_> {
    pub(super) fn steps(&mut self, v: &Val<'_>) {
        let DeValue::Array(items) = v.get_ref() else {
            self.push(
                "`step` must be a list of tables",
                self.head(v.span()),
                "write each step as a `[[step]]` table",
            );
            return;
        };
        if items.is_empty() {
            self.no_steps(self.head(v.span()));
            return;
        }
        let mut ids: HashMap<String, Range<usize>> = HashMap::new();
        // Unique ids in order; `node_of[step index]` is the step's position there.
        let mut order: Vec<String> = Vec::new();
        let mut node_of: Vec<Option<usize>> = vec![None; items.len()];
        let mut afters: Vec<AfterRef> = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let DeValue::Table(t) = item.get_ref() else {
                self.push(
                    format!("step {} must be a table", index + 1),
                    item.span(),
                    "write each step as a `[[step]]` table",
                );
                continue;
            };
            let id = self.step(index, item.span(), t, &mut afters);
            if let Some((id, span)) = id {
                if let Some(first) = ids.get(&id) {
                    let line = self.line_of(first.start);
                    self.push(
                        format!("duplicate step id `{id}` (first defined on line {line})"),
                        span,
                        "step ids must be unique; rename one of them",
                    );
                } else {
                    ids.insert(id.clone(), span);
                    node_of[index] = Some(order.len());
                    order.push(id);
                }
            }
        }
        self.after_refs(&order, &node_of, &afters);
    }

    /// Check one step; returns its id and the id's span.
    fn step(
        &mut self,
        index: usize,
        span: Range<usize>,
        t: &DeTable<'_>,
        afters: &mut Vec<AfterRef>,
    ) -> Option<(String, Range<usize>)> {
        let field = |key: &str| t.iter().find(|(k, _)| k.get_ref() == key);
        let id = match field("id") {
            None => {
                self.push(
                    format!("step {} has no `id`", index + 1),
                    self.head(span.clone()),
                    "add `id = \"…\"`, unique within the runbook, e.g. `id = \"idp-suspend\"`",
                );
                None
            }
            Some((_, v)) => self
                .string("id", v, "\"idp-suspend\"")
                .map(|s| (s.to_string(), v.span())),
        };
        if let Some((id, span)) = &id
            && !is_ident(id)
        {
            self.push(
                format!("step id `{id}` is not valid"),
                span.clone(),
                "use letters, digits, `-` and `_`, e.g. `idp-suspend`",
            );
        }
        let name = id
            .as_ref()
            .map_or_else(|| format!("{}", index + 1), |(id, _)| id.clone());
        let place = format!("step `{name}`");
        if field("lane").is_none() {
            self.push(
                format!("step `{name}` has no `lane`"),
                id.as_ref()
                    .map_or_else(|| self.head(span.clone()), |(_, s)| s.clone()),
                format!("add `lane = \"…\"`, one of: {}", LANES.join(", ")),
            );
        }

        let mut system_kind: Option<&'static KindSpec> = None;
        let mut action: Option<&'static providers::ActionSpec> = None;
        if let Some((_, v)) = field("system")
            && let Some(system) = self.string("system", v, "\"idp\"")
        {
            match self.systems.get(system) {
                Some(kind) => system_kind = *kind,
                None => {
                    let declared: Vec<&str> = self.systems.keys().map(String::as_str).collect();
                    let mut hint = if declared.is_empty() {
                        format!("declare it: `[systems.{system}]` with a `kind`")
                    } else {
                        format!(
                            "declared systems: {}; or declare it under [systems.{system}]",
                            declared.join(", ")
                        )
                    };
                    if let Some(best) = closest(system, declared.iter().copied()) {
                        hint = format!("did you mean `{best}`? {hint}");
                    }
                    self.push(
                        format!("step `{name}` refers to system `{system}`, which is not declared"),
                        v.span(),
                        hint,
                    );
                }
            }
        }
        if let Some((_, v)) = field("action")
            && let Some(a) = self.string("action", v, "\"suspend_user\"")
            && let Some(kind) = system_kind
        {
            action = kind.action(a);
            if action.is_none() {
                let names: Vec<&str> = kind.actions.iter().map(|a| a.name).collect();
                let mut hint = format!("kind `{}` offers: {}", kind.name, names.join(", "));
                if let Some(best) = closest(a, names.iter().copied()) {
                    hint = format!("did you mean `{best}`? {hint}");
                }
                self.push(
                    format!("kind `{}` has no action `{a}`", kind.name),
                    v.span(),
                    hint,
                );
            }
        }

        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            match key {
                "id" | "system" | "action" => {}
                "lane" => self.one_of(key, v, LANES),
                "phase" => self.one_of(key, v, PHASES),
                "params" => match action {
                    Some(action) => self.params(action, v, &place),
                    None => {
                        self.table(key, v, "{ path = \"…\" }");
                    }
                },
                "manual" => {
                    if let Some(s) = self.string(key, v, "\"Collect the laptop\"") {
                        self.template(s, v.span(), &format!("the `manual` text of {place}"));
                    }
                }
                "fields" => {
                    self.string_list(key, v, "[\"tracking_number\"]");
                }
                "when" => self.when(v),
                "after" => {
                    if let Some(list) = self.string_list(key, v, "[\"other-step\"]") {
                        afters.extend(list.into_iter().map(|(to, span)| AfterRef {
                            from: index,
                            to: to.to_string(),
                            span,
                        }));
                    }
                }
                "owner" | "escalate_to" | "description" => {
                    // People read these: templates in them are rendered at plan time.
                    if let Some(s) = self.string(key, v, "\"…\"") {
                        self.template(s, v.span(), &format!("the `{key}` of {place}"));
                    }
                }
                "deadline" => {
                    if let Some(s) = self.string(key, v, "\"effective+7d\"")
                        && !valid_deadline(s)
                    {
                        self.push(
                            format!("`{s}` is not a valid deadline"),
                            v.span(),
                            "use `effective` or `effective+<N><m|h|d|w>`, e.g. `effective+7d`",
                        );
                    }
                }
                "alerts_user" => {
                    self.boolean(key, v);
                }
                "escalate_after" => {
                    if let Some(s) = self.string(key, v, "\"48h\"")
                        && crate::notify::parse_duration(s).is_none()
                    {
                        self.push(
                            format!("`escalate_after` must be a duration like 48h, 30m, 2d or 1w, not {s:?}"),
                            v.span(),
                            "write it as `escalate_after = \"48h\"`",
                        );
                    }
                }
                other => self.unknown_key(other, k.span(), &place, STEP_KEYS),
            }
        }

        // Automated (system + action) or manual (manual text), never both.
        let system = field("system");
        let act = field("action");
        let manual = field("manual");
        match (system, act, manual) {
            (_, _, Some((mk, _))) if system.is_some() || act.is_some() => self.push(
                format!("step `{name}` is both manual and automated"),
                mk.span(),
                "a manual step has `manual` text and no `system` or `action`; split it into two steps",
            ),
            (None, None, None) => self.push(
                format!("step `{name}` has nothing to do"),
                id.as_ref().map_or_else(|| self.head(span.clone()), |(_, s)| s.clone()),
                "add `system` and `action` for an automated step, or `manual` text for a manual one",
            ),
            (Some((_, sv)), None, None) => {
                let offers = system_kind.map_or(String::new(), |k| {
                    let names: Vec<&str> = k.actions.iter().map(|a| a.name).collect();
                    format!("; kind `{}` offers: {}", k.name, names.join(", "))
                });
                self.push(
                    format!("step `{name}` has a `system` but no `action`"),
                    sv.span(),
                    format!("add `action = \"…\"`{offers}"),
                );
            }
            (None, Some((_, av)), None) => {
                let declared: Vec<&str> = self.systems.keys().map(String::as_str).collect();
                self.push(
                    format!("step `{name}` has an `action` but no `system`"),
                    av.span(),
                    format!("add `system = \"…\"`, one of: {}", declared.join(", ")),
                );
            }
            _ => {}
        }
        let automated = system.is_some() || act.is_some();
        if automated && let Some((fk, _)) = field("fields") {
            self.push(
                format!("`fields` on automated step `{name}`"),
                fk.span(),
                "`fields` lists what the confirmer of a manual step records; remove it here",
            );
        }
        if manual.is_some()
            && !automated
            && let Some((pk, _)) = field("params")
        {
            self.push(
                format!("`params` on manual step `{name}`"),
                pk.span(),
                "`params` belong to an automated step's action; remove it here",
            );
        }
        if let Some(action) = action {
            let given = field("params").and_then(|(_, v)| v.get_ref().as_table());
            for p in action.params.fields().iter().filter(|p| p.required) {
                let present = given.is_some_and(|t| {
                    t.iter()
                        .any(|(k, _)| k.get_ref().as_ref() == p.name.as_str())
                });
                if !present {
                    let at = field("action").map_or(span.clone(), |(_, v)| v.span());
                    self.push(
                        format!("action `{}` needs the parameter `{}`", action.name, p.name),
                        at,
                        format!(
                            "add `params = {{ {} = … }}` ({}: {})",
                            p.name, p.ty, p.description
                        ),
                    );
                }
            }
        }
        id
    }

    fn when(&mut self, v: &Val<'_>) {
        let Some(t) = self.table("when", v, "{ type = \"involuntary\" }") else {
            return;
        };
        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            if key != "type" && !self.inputs.contains(key) {
                let mut allowed = vec!["type"];
                allowed.extend(self.inputs.iter().map(String::as_str));
                let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
                let refs: Vec<&str> = allowed.iter().map(String::as_str).collect();
                let mut hint = format!(
                    "conditions are on `type` or a declared input ({}); declare inputs under [inputs]",
                    refs.join(", ")
                );
                if let Some(best) = closest(key, refs.iter().copied()) {
                    hint = format!("did you mean `{best}`? {hint}");
                }
                self.push(
                    format!("unknown condition `{key}` in `when`"),
                    k.span(),
                    hint,
                );
                continue;
            }
            let values: Vec<(&str, Range<usize>)> = match v.get_ref() {
                DeValue::String(s) => vec![(s.as_ref(), v.span())],
                DeValue::Array(_) => match self.string_list(key, v, "[\"a\", \"b\"]") {
                    Some(list) => list,
                    None => continue,
                },
                _ => {
                    self.wrong_type(key, v, "a string or a list of strings", "\"…\"");
                    continue;
                }
            };
            if key == "type" {
                for (s, span) in values {
                    if !DEPARTURE_TYPES.contains(&s) {
                        self.push(
                            format!("`{s}` is not a departure type"),
                            span,
                            "use `voluntary` or `involuntary`",
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{HEAD, find, load};
    use super::*;

    #[test]
    fn unknown_key_in_step() {
        let src =
            format!("{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"x\"\nonwer = \"me\"\n");
        let (msg, line, col, hint) = find(&src, "unknown key");
        assert_eq!(msg, "unknown key `onwer` in step `a`");
        assert_eq!((line, col), (13, 1));
        assert!(hint.contains("did you mean `owner`?"), "{hint}");
    }

    #[test]
    fn unknown_param_and_missing_required_param() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"r\"\nlane = \"security\"\nsystem = \"idp\"\naction = \"rotate_secret\"\nparams = {{ pth = \"x\" }}\n"
        );
        let (msg, line, col, hint) = find(&src, "unknown key");
        assert_eq!(
            msg,
            "unknown key `pth` in the params of action `rotate_secret`"
        );
        assert_eq!((line, col), (14, 12));
        assert!(hint.contains("did you mean `path`?"), "{hint}");
        let (msg, line, col, hint) = find(&src, "needs the parameter");
        assert_eq!(msg, "action `rotate_secret` needs the parameter `path`");
        assert_eq!((line, col), (13, 10));
        assert!(hint.contains("params = { path = "), "{hint}");
    }

    const VAULT: &str = "[runbook]\nname = \"t\"\n[systems.v]\nkind = \"vault\"\nbase_url = \"https://v.example\"\ntoken = { env = \"T\" }\n";

    fn vault_step(params: &str) -> String {
        format!(
            "{VAULT}[[step]]\nid = \"r\"\nlane = \"security\"\nsystem = \"v\"\naction = \"rotate_secret\"\nparams = {params}\n"
        )
    }

    /// Bounds and non-empty lists come from the params type's schema, at the value.
    #[test]
    fn param_bounds_from_the_type() {
        let src = vault_step("{ paths = [\"a\"], length = 8 }");
        let (msg, line, col, hint) = find(&src, "length");
        assert_eq!(msg, "`length` must be from 16 to 256, not 8");
        assert_eq!((line, col), (12, 36));
        assert!(hint.contains("integer 16–256"), "{hint}");

        let src = vault_step("{ paths = [] }");
        let (msg, line, col, _) = find(&src, "paths");
        assert_eq!(msg, "`paths` must not be empty");
        assert_eq!((line, col), (12, 20));

        let src = vault_step("{ paths = [\"a\"], keys = \"k\" }");
        let (msg, _, _, _) = find(&src, "keys");
        assert_eq!(msg, "`keys` must be a list of strings, found string");

        let src = vault_step("{ paths = [\"a\"], length = 32 }");
        assert!(load(&src).is_ok(), "{:?}", load(&src).err());
    }

    #[test]
    fn unknown_action_lists_the_kinds_actions() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nsystem = \"idp\"\naction = \"suspend\"\n"
        );
        let (msg, line, col, hint) = find(&src, "action");
        assert_eq!(msg, "kind `sandbox` has no action `suspend`");
        assert_eq!((line, col), (13, 10));
        assert!(hint.contains("did you mean `suspend_user`?"), "{hint}");
        assert!(hint.contains("revoke_sessions"), "{hint}");
    }

    #[test]
    fn missing_system() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nsystem = \"ipd\"\naction = \"x\"\n"
        );
        let (msg, line, col, hint) = find(&src, "not declared");
        assert_eq!(
            msg,
            "step `a` refers to system `ipd`, which is not declared"
        );
        assert_eq!((line, col), (12, 10));
        assert!(hint.contains("did you mean `idp`?"), "{hint}");
    }

    #[test]
    fn duplicate_step_id_points_at_the_second() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"x\"\n\n[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"y\"\n"
        );
        let (msg, line, col, hint) = find(&src, "duplicate");
        assert_eq!(msg, "duplicate step id `a` (first defined on line 10)");
        assert_eq!((line, col), (15, 6));
        assert!(hint.contains("unique"));
    }

    #[test]
    fn template_in_param() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"r\"\nlane = \"security\"\nsystem = \"idp\"\naction = \"rotate_secret\"\nparams = {{ path = \"teams/{{{{ user.team }}}}\" }}\n"
        );
        let (msg, line, col, _) = find(&src, "template");
        assert_eq!(
            msg,
            "unknown template variable `user.team` in `path` in step `r`"
        );
        assert_eq!((line, col), (14, 29));
    }

    #[test]
    fn automated_or_manual_not_both() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nsystem = \"idp\"\naction = \"suspend_user\"\nmanual = \"x\"\nfields = [\"f\"]\n"
        );
        let (msg, line, col, _) = find(&src, "both");
        assert_eq!(msg, "step `a` is both manual and automated");
        assert_eq!((line, col), (14, 1));
        let (msg, line, col, _) = find(&src, "fields");
        assert_eq!(msg, "`fields` on automated step `a`");
        assert_eq!((line, col), (15, 1));
        let src = format!("{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\n");
        let (msg, line, col, _) = find(&src, "nothing");
        assert_eq!(msg, "step `a` has nothing to do");
        assert_eq!((line, col), (10, 6));
        let src = format!("{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nsystem = \"idp\"\n");
        let (msg, _, _, hint) = find(&src, "no `action`");
        assert_eq!(msg, "step `a` has a `system` but no `action`");
        assert!(hint.contains("suspend_user"), "{hint}");
    }

    #[test]
    fn when_keys_and_type_values() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"x\"\nwhen = {{ type = [\"voluntary\", \"fired\"], team = \"x\", manager = \"m\" }}\n"
        );
        let (msg, line, col, hint) = find(&src, "departure type");
        assert_eq!(msg, "`fired` is not a departure type");
        assert_eq!((line, col), (13, 31));
        assert!(hint.contains("involuntary"));
        let (msg, line, col, hint) = find(&src, "condition");
        assert_eq!(msg, "unknown condition `team` in `when`");
        assert_eq!((line, col), (13, 41));
        assert!(hint.contains("type, manager"), "{hint}");
    }

    #[test]
    fn deadline_format() {
        for ok in [
            "effective",
            "effective+0h",
            "effective+15m",
            "effective+7d",
            "effective+2w",
        ] {
            assert!(valid_deadline(ok), "{ok}");
        }
        for bad in [
            "",
            "effective+",
            "effective+7",
            "effective-1d",
            "effective+1y",
            "7d",
            "effective+d",
        ] {
            assert!(!valid_deadline(bad), "{bad}");
        }
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"x\"\ndeadline = \"tomorrow\"\n"
        );
        let (msg, line, col, _) = find(&src, "deadline");
        assert_eq!(msg, "`tomorrow` is not a valid deadline");
        assert_eq!((line, col), (13, 12));
    }

    #[test]
    fn ids_names_and_enums() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a b\"\nlane = \"itt\"\nmanual = \"x\"\nphase = \"later\"\n"
        );
        let (msg, line, col, _) = find(&src, "step id");
        assert_eq!(msg, "step id `a b` is not valid");
        assert_eq!((line, col), (10, 6));
        let (msg, line, col, hint) = find(&src, "`lane`");
        assert_eq!(msg, "`itt` is not a valid `lane`");
        assert_eq!((line, col), (11, 8));
        assert!(hint.contains("did you mean `it`?"), "{hint}");
        let (msg, ..) = find(&src, "`phase`");
        assert_eq!(msg, "`later` is not a valid `phase`");
        let src = "[runbook]\nname = \"t\"\n[systems.\"my idp\"]\nkind = \"sandbox\"\n";
        let (msg, line, col, _) = find(src, "system name");
        assert_eq!(msg, "system name `my idp` is not valid");
        assert_eq!((line, col), (3, 10));
    }

    #[test]
    fn templates_in_owner_escalation_and_description_are_checked() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"x\"\nowner = \"{{{{ user.managr }}}}\"\nescalate_to = \"{{{{ user.boss }}}}\"\ndescription = \"{{{{ departure.effective_at | shout }}}}\"\n"
        );
        let (msg, line, col, hint) = find(&src, "user.managr");
        assert_eq!(
            msg,
            "unknown template variable `user.managr` in the `owner` of step `a`"
        );
        assert_eq!((line, col), (13, 13));
        assert!(hint.contains("did you mean `user.manager`?"), "{hint}");
        let (msg, ..) = find(&src, "user.boss");
        assert_eq!(
            msg,
            "unknown template variable `user.boss` in the `escalate_to` of step `a`"
        );
        let (msg, line, col, hint) = find(&src, "filter");
        assert_eq!(
            msg,
            "`shout` in the `description` of step `a` is not a template filter"
        );
        assert_eq!((line, col), (15, 44));
        assert!(hint.contains("| date"), "{hint}");
        let ok = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"Due {{{{ departure.effective_at | date: '%d %B' }}}}\"\nowner = \"{{{{ user.manager }}}}\"\n"
        );
        assert!(load(&ok).is_ok());
    }
}

//! `offboard confirm`: record a manual step done later, and re-sign the evidence.

use std::collections::BTreeMap;

use crate::cli::ConfirmArgs;
use crate::departure::Answer;
use crate::exit::{CliError, Exit};
use crate::journal::Record;
use crate::ui::safe;

use super::{Ctx, common};

pub fn exec(ctx: &Ctx, args: ConfirmArgs) -> anyhow::Result<Exit> {
    let (id, _) = common::find_departure(ctx, &args.departure)?;
    let key = common::signing_key(ctx)?;
    let driving = common::open_departure(ctx, &id, &key)?;
    let state = driving.state();
    let Some((step, st)) = state.step(&args.step) else {
        let manual: Vec<&str> = state
            .facts
            .steps
            .iter()
            .filter(|s| s.is_manual())
            .map(|s| s.id.as_str())
            .collect();
        return Err(
            CliError::usage(format!("departure {id} has no step {}", safe(&args.step)))
                .hint(format!("its manual steps: {}", manual.join(", ")))
                .into(),
        );
    };
    if !step.is_manual() {
        return Err(CliError::usage(format!(
            "{} is an automated step; it is confirmed by its check",
            step.id
        ))
        .hint(format!("re-check it with `offboard verify {id}`"))
        .into());
    }
    let mut fields = BTreeMap::new();
    for kv in &args.fields {
        let (k, v) = common::key_value(kv, "--field")?;
        if !step.fields.contains(&k) {
            return Err(
                CliError::usage(format!("step {} asks for no field {k:?}", step.id))
                    .hint(if step.fields.is_empty() {
                        "this step asks for no fields".to_string()
                    } else {
                        format!("it asks for: {}", step.fields.join(", "))
                    })
                    .into(),
            );
        }
        fields.insert(k, v);
    }
    let answer = if args.not_applicable.is_some() {
        Answer::NotApplicable
    } else {
        Answer::Done
    };
    if answer == Answer::Done
        && let Some(asset) = &step.asset
    {
        // A return step: what the asset process needs, checked as a whole (the fields given
        // now over those recorded before).
        let mut all = st.fields.clone();
        all.extend(fields.clone());
        if let Some((problem, hint)) = crate::assets::check_fields(&all) {
            return Err(CliError::usage(format!(
                "step {} (asset {}): {problem}",
                step.id,
                safe(&asset.tag)
            ))
            .hint(hint)
            .into());
        }
        crate::assets::recorded_fields(asset, &mut fields);
    } else if answer == Answer::Done {
        let missing: Vec<&String> = step
            .fields
            .iter()
            .filter(|f| !fields.contains_key(*f) && !st.fields.contains_key(*f))
            .collect();
        if !missing.is_empty() {
            return Err(CliError::usage(format!(
                "step {} needs {} before it can be confirmed",
                step.id,
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .hint(format!(
                "add {}",
                missing
                    .iter()
                    .map(|f| format!("--field {f}=…"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ))
            .into());
        }
    }
    if st.status().is_settled() {
        ctx.printer.warn(format!(
            "{} was already {}; recording the new answer as well",
            step.id,
            st.status().as_str()
        ));
    }
    let note = args.not_applicable.clone().or(args.note.clone());
    driving.append(
        Some(&step.id),
        Record::Answered {
            answer,
            note,
            fields,
        },
    )?;
    let sealed = driving.seal(&ctx.state, &key)?;
    let state = driving.state();
    ctx.printer.result(format!(
        "Recorded {} as {} for departure {id}. Evidence re-signed: {} (revision {}).",
        safe(&step.id),
        if answer == Answer::Done {
            "done"
        } else {
            "not applicable"
        },
        sealed.json_path.display(),
        sealed.revision
    ));
    let open = state
        .steps
        .values()
        .filter(|s| !s.status().is_settled())
        .count();
    if open > 0 {
        ctx.printer
            .info(format!("{open} step(s) still open: `offboard status {id}`"));
    } else {
        ctx.printer
            .info(ctx.printer.green("The departure is now complete."));
    }
    super::attach::after(ctx, &driving, &key);
    ctx.printer.json_result(&serde_json::json!({
        "departure": id,
        "step": step.id,
        "answer": answer,
        "complete": state.is_complete(),
        "evidence": sealed.json_path,
        "revision": sealed.revision,
    }));
    Ok(Exit::Ok)
}

use super::*;
use crate::providers::kit::microsoft::with_client_secret;

fn cfg(base: Option<&str>) -> SystemConfig {
    let mut c = SystemConfig::new("contoso", "entra", base);
    for (k, v) in [
        ("tenant_id", "contoso.onmicrosoft.com"),
        ("client_id", "0f6c-app"),
    ] {
        c.settings.insert(k.into(), toml::Value::String(v.into()));
    }
    c
}

fn call<'a>(
    action: &'a str,
    login: &'a str,
    params: &'a serde_json::Map<String, serde_json::Value>,
) -> StepCall<'a> {
    StepCall {
        step_id: "s",
        action,
        login,
        params,
        account: None,
    }
}

#[test]
fn graph_is_the_default_and_the_plan_names_every_request() {
    let p = (KIND.connect)(&with_client_secret(cfg(None), "cs")).unwrap();
    let params = serde_json::Map::new();
    let lines: Vec<String> = p
        .describe(&call(
            "remove_from_groups",
            "alice+ops@contoso.com",
            &params,
        ))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "GET https://graph.microsoft.com/v1.0/users/alice%2Bops%40contoso.com",
            "GET https://graph.microsoft.com/v1.0/users/{id}/memberOf",
            "DELETE https://graph.microsoft.com/v1.0/groups/{group_id}/members/{id}/$ref",
        ]
    );
    for a in KIND.actions {
        assert!(
            p.describe(&call(a.name, "a@b.c", &params)).len() >= 2,
            "{} describes its requests",
            a.name
        );
    }
}

#[test]
fn a_credential_is_required_once() {
    // Planning: the loader hands the reference over as a setting.
    let mut planned = cfg(None);
    planned.settings.insert(
        "client_secret".into(),
        toml::Value::Table(toml::map::Map::from_iter([(
            "env".to_string(),
            toml::Value::String("S".into()),
        )])),
    );
    assert!((KIND.connect)(&planned).is_ok());
    let e = (KIND.connect)(&cfg(None)).err().unwrap().to_string();
    assert!(
        e.contains("client_secret") && e.contains("certificate"),
        "{e}"
    );
    let mut both = planned.clone();
    both.settings
        .insert("certificate".into(), toml::Value::String("x".into()));
    let e = (KIND.connect)(&both).err().unwrap().to_string();
    assert!(e.contains("not both"), "{e}");
    let mut bad = planned.clone();
    bad.settings
        .insert("tenant_id".into(), toml::Value::String("../common".into()));
    let e = (KIND.connect)(&bad).err().unwrap().to_string();
    assert!(e.contains("tenant_id"), "{e}");
}

#[test]
fn a_marker_holds_only_for_a_later_value() {
    use chrono::{TimeZone, Utc};
    let t = |s| Some(Utc.timestamp_opt(s, 0).unwrap());
    let m = graph::Marker {
        before: t(100),
        recorded_at: Utc::now(),
    };
    assert!(m.holds(t(101)));
    assert!(!m.holds(t(100)) && !m.holds(t(99)) && !m.holds(None));
    let never = graph::Marker {
        before: None,
        recorded_at: Utc::now(),
    };
    assert!(never.holds(t(1)) && !never.holds(None));
    assert!(m.is_recent());
    let old = graph::Marker {
        before: t(100),
        recorded_at: Utc::now() - chrono::Duration::days(2),
    };
    assert!(!old.is_recent());
}

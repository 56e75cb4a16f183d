use serde_json::{Map, Value, json};

use super::*;

fn call<'a>(action: &'a str, login: &'a str, params: &'a Map<String, Value>) -> StepCall<'a> {
    StepCall {
        step_id: "s",
        action,
        login,
        params,
        account: None,
    }
}

fn provider() -> Arc<dyn Provider> {
    let mut cfg = SystemConfig::new("gw", "google", None);
    cfg.settings.insert(
        "admin".into(),
        toml::Value::String("admin@example.com".into()),
    );
    (KIND.connect)(&cfg).unwrap()
}

#[test]
fn describe_shows_every_request_and_encodes_the_login() {
    let p = provider();
    let none = Map::new();
    let lines: Vec<String> = p
        .describe(&call("remove_from_groups", "a+b@corp/x", &none))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "GET https://admin.googleapis.com/admin/directory/v1/users/a%2Bb%40corp%2Fx",
            "GET https://admin.googleapis.com/admin/directory/v1/groups?userKey={id}",
            "DELETE https://admin.googleapis.com/admin/directory/v1/groups/{groupId}/members/{id}",
        ]
    );
    let params = json!({"to": "boss@example.com", "products": ["Google-Apps"],
                        "org_unit_path": "/Suspended", "subject": "s", "body": "b"});
    let params = params.as_object().unwrap();
    for a in KIND.actions {
        let mut own = Map::new();
        for k in a.params.fields() {
            if let Some(v) = params.get(&k.name) {
                own.insert(k.name.clone(), v.clone());
            }
        }
        assert!(
            p.describe(&call(a.name, "x@example.com", &own)).len() >= 2,
            "{}",
            a.name
        );
    }
    let lic = json!({"products": ["Google-Apps"]});
    let lines: Vec<String> = p
        .describe(&call(
            "remove_licenses",
            "x@example.com",
            lic.as_object().unwrap(),
        ))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines[1..],
        [
            "GET https://licensing.googleapis.com/apps/licensing/v1/product/Google-Apps/users?customerId=my_customer",
            "DELETE https://licensing.googleapis.com/apps/licensing/v1/product/Google-Apps/sku/{skuId}/user/{email}",
        ]
    );
    let lines: Vec<String> = p
        .describe(&call("set_forwarding", "x@example.com", &params.clone()))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(lines.contains(
        &"GET https://gmail.googleapis.com/gmail/v1/users/me/settings/forwardingAddresses/boss%40example.com"
            .to_string()
    ));
}

#[test]
fn settings_are_checked_at_connect() {
    let cfg = SystemConfig::new("gw", "google", None);
    let e = (KIND.connect)(&cfg).err().unwrap().to_string();
    assert!(e.contains("set `admin`"), "{e}");
    let mut cfg = SystemConfig::new("gw", "google", None);
    cfg.settings.insert(
        "admin".into(),
        toml::Value::String("admin@example.com".into()),
    );
    cfg.settings.insert(
        "admin_url".into(),
        toml::Value::String("http://google.example".into()),
    );
    let e = (KIND.connect)(&cfg).err().unwrap().to_string();
    assert!(e.contains("plain HTTP"), "{e}");
    cfg.settings.remove("admin_url");
    cfg.secrets.insert(
        "service_account".into(),
        secrecy::SecretString::from("{\"type\": \"authorized_user\"}".to_string()),
    );
    let e = (KIND.connect)(&cfg).err().unwrap().to_string();
    assert!(e.contains("service_account"), "{e}");
}

#[test]
fn google_errors_read_well_and_throttles_are_told_apart() {
    let body = br#"{"error":{"code":403,"message":"Not Authorized to access this resource/api","errors":[{"message":"Not Authorized to access this resource/api","domain":"global","reason":"forbidden"}],"status":"PERMISSION_DENIED"}}"#;
    assert_eq!(
        google_error_message(body).as_deref(),
        Some("Not Authorized to access this resource/api (forbidden, PERMISSION_DENIED)")
    );
    assert!(!throttled(StatusCode::FORBIDDEN, &HeaderMap::new(), body));
    let limit = br#"{"error":{"code":403,"message":"Quota exceeded for quota metric","errors":[{"message":"x","domain":"usageLimits","reason":"userRateLimitExceeded"}]}}"#;
    assert!(throttled(StatusCode::FORBIDDEN, &HeaderMap::new(), limit));
    for reason in ["rateLimitExceeded", "quotaExceeded"] {
        let b = limit_body(reason);
        assert!(throttled(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            b.as_bytes()
        ));
        assert!(throttled(
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new(),
            b.as_bytes()
        ));
    }
    assert!(!throttled(
        StatusCode::BAD_REQUEST,
        &HeaderMap::new(),
        limit
    ));
    assert_eq!(google_error_message(b"<html>"), None);
}

fn limit_body(reason: &str) -> String {
    json!({"error": {"code": 403, "message": "limit",
                     "errors": [{"message": "limit", "domain": "usageLimits", "reason": reason}]}})
    .to_string()
}

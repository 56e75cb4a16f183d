//! The InvokeCommand endpoint: one cmdlet per POST, its output over every page, and how
//! a cmdlet's failure reads.

use reqwest::StatusCode;
use serde_json::{Value, json};
use url::Url;

use super::{ExchangeProvider, MAX_PAGES};
use crate::providers::kit::http::Request;
use crate::providers::kit::microsoft;
use crate::providers::{CallCtx, ProviderError, RequestLine, RequestRecord, StepCall};

/// What one cmdlet answered.
pub(super) enum Ran {
    /// Its output, every page.
    Output(Vec<Value>),
    /// Exchange said an object it was given does not exist
    /// (`ManagementObjectNotFoundException`), in these words.
    NotFound(String),
}

/// The exception type and text of a cmdlet's failure: the first `details[].message`
/// (`<code>|<type>|<text>`), else `innererror.internalexception`.
pub(super) fn cmdlet_error(body: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = &v["error"];
    if let Some(details) = e["details"].as_array() {
        for d in details {
            let Some(m) = d["message"].as_str() else {
                continue;
            };
            let parts: Vec<&str> = m.splitn(3, '|').collect();
            let (ty, text) = match parts.as_slice() {
                [_, ty, text] => (ty.trim(), text.trim()),
                _ => ("", m.trim()),
            };
            if !text.is_empty() {
                return Some((ty.to_string(), text.to_string()));
            }
        }
    }
    let inner = if e["innererror"].is_object() {
        &e["innererror"]
    } else {
        &e["innerError"]
    };
    let internal = if inner["internalexception"].is_object() {
        &inner["internalexception"]
    } else {
        &inner["internalException"]
    };
    let text = internal["message"].as_str().map(str::trim).unwrap_or("");
    if !text.is_empty() {
        let ty = internal["type"].as_str().unwrap_or("");
        return Some((ty.to_string(), text.to_string()));
    }
    None
}

/// Exchange's error body made readable: the cmdlet's own words first (`<Exception>: <text>`),
/// else Microsoft's OData `error.code: message`.
pub fn error_text(body: &[u8]) -> Option<String> {
    if let Some((ty, text)) = cmdlet_error(body) {
        let short = ty.rsplit('.').next().unwrap_or("");
        return Some(if short.is_empty() {
            text
        } else {
            format!("{short}: {text}")
        });
    }
    if let Some(m) = microsoft::error_message(body) {
        return Some(m);
    }
    // Exchange answers a cmdlet the app may not run with a body of NUL bytes.
    let blank = !body.is_empty() && body.iter().all(|b| *b == 0 || b.is_ascii_whitespace());
    blank.then(|| "Exchange sent no error text".to_string())
}

impl ExchangeProvider {
    pub(super) fn perm(&self, call: &StepCall<'_>, msg: impl std::fmt::Display) -> ProviderError {
        ProviderError::Permanent(format!(
            "system `{}`: step `{}`: {msg}",
            self.system, call.step_id
        ))
    }

    /// Run `cmdlet` with `parameters` and read every page of its output. Each request is
    /// journaled with the cmdlet's name after the URL.
    pub(super) async fn invoke(
        &self,
        cmdlet: &'static str,
        parameters: Value,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Ran, ProviderError> {
        let body = json!({ "CmdletInput": { "CmdletName": cmdlet, "Parameters": parameters } });
        // A read must say what it read; a change may answer no list at all.
        let reads = cmdlet.starts_with("Get-") || parameters["PreviewOnly"] == json!(true);
        let first = self.endpoint.clone();
        let mut next = Some(first.clone());
        let mut seen: Vec<String> = Vec::new();
        let mut values = Vec::new();
        while let Some(url) = next.take() {
            if seen.len() >= MAX_PAGES {
                return Err(ProviderError::Transient(format!(
                    "system `{}`: {cmdlet}: more than {MAX_PAGES} pages; stopped reading",
                    self.system
                )));
            }
            if seen.contains(&url.to_string()) {
                return Err(ProviderError::Permanent(format!(
                    "system `{}`: {cmdlet}: Exchange sent the same next-page link twice; stopped \
                     reading instead of looping",
                    self.system
                )));
            }
            seen.push(url.to_string());
            // Cmdlet failures come back as 400 or 404 with the cmdlet's own words; they are
            // read here, the rest (401, 403, 429, 5xx) by the request path.
            let req = Request::post(url.clone())
                .json(&body, "application/json")
                .allow(StatusCode::BAD_REQUEST)
                .allow(StatusCode::NOT_FOUND)
                .resend_safe();
            let resp = self.http.send(req, ctx).await?;
            let mut record = resp.record.clone();
            record.url = format!("{} {cmdlet}", record.url);
            records.push(record);
            if !resp.status.is_success() {
                let failure = cmdlet_error(&resp.body);
                let not_found = failure
                    .as_ref()
                    .is_some_and(|(ty, _)| ty.ends_with("ManagementObjectNotFoundException"));
                return match failure {
                    Some((_, text)) if not_found => Ok(Ran::NotFound(text)),
                    _ => Err(ProviderError::Permanent(format!(
                        "system `{}`: {cmdlet} → {}: {}",
                        self.system,
                        resp.status,
                        error_text(&resp.body).unwrap_or_else(|| "no error text".into())
                    ))),
                };
            }
            let page: Value = resp.json()?;
            match page.get("value") {
                Some(Value::Array(items)) => values.extend(items.iter().cloned()),
                None | Some(Value::Null) if !reads => {}
                _ => {
                    return Err(ProviderError::Permanent(format!(
                        "system `{}`: {cmdlet} answered without a `value` list",
                        self.system
                    )));
                }
            }
            next = match page.get("@odata.nextLink").and_then(Value::as_str) {
                None => None,
                Some(href) => Some(self.next_page(&first, &url, href)?),
            };
        }
        Ok(Ran::Output(values))
    }

    /// A next-page link, resolved against the page it came from; refused unless it stays on
    /// the first page's origin (the token goes with it).
    pub(super) fn next_page(
        &self,
        first: &Url,
        page: &Url,
        href: &str,
    ) -> Result<Url, ProviderError> {
        let next = page.join(href).map_err(|e| {
            ProviderError::Permanent(format!(
                "system `{}`: the next-page link {href:?} is not a URL: {e}",
                self.system
            ))
        })?;
        if next.origin() != first.origin() {
            return Err(ProviderError::Permanent(format!(
                "system `{}`: the next page is on another origin ({}); not following it, the \
                 token would go there too",
                self.system,
                next.origin().ascii_serialization()
            )));
        }
        Ok(next)
    }

    /// A cmdlet whose output is read: a "not found" from it is an error in these words.
    pub(super) async fn output(
        &self,
        cmdlet: &'static str,
        parameters: Value,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Value>, ProviderError> {
        match self.invoke(cmdlet, parameters, ctx, records).await? {
            Ran::Output(v) => Ok(v),
            Ran::NotFound(why) => Err(ProviderError::Permanent(format!(
                "system `{}`: {cmdlet}: {why}",
                self.system
            ))),
        }
    }

    /// The lines `describe` shows: the InvokeCommand URL with the cmdlet after it.
    pub(super) fn line(&self, cmdlet: &str) -> RequestLine {
        RequestLine {
            method: "POST".into(),
            url: format!("{} {cmdlet}", self.endpoint),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdlet_errors_read_as_exchange_writes_them() {
        let body = br#"{"error":{"code":"NotFound","message":"Error executing cmdlet","details":[{"code":"Client","target":"","message":"Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation couldn't be performed because object 'x@contoso.com' couldn't be found on 'AM0PR01DC001.EURPRD01.PROD.OUTLOOK.COM'."}],"innererror":{"message":"Error executing cmdlet","type":"Microsoft.Exchange.Admin.OData.Core.ODataServiceException"}}}"#;
        let (ty, text) = cmdlet_error(body).unwrap();
        assert!(ty.ends_with("ManagementObjectNotFoundException"), "{ty}");
        assert!(text.starts_with("The operation couldn't"), "{text}");
        assert_eq!(
            error_text(body).unwrap(),
            "ManagementObjectNotFoundException: The operation couldn't be performed because object 'x@contoso.com' couldn't be found on 'AM0PR01DC001.EURPRD01.PROD.OUTLOOK.COM'."
        );
        // No details: the internal exception, else the OData code and message.
        let body = br#"{"error":{"code":"BadRequest","message":"Error executing cmdlet","innererror":{"message":"m","type":"t","internalexception":{"message":"A parameter cannot be found that matches parameter name 'Typ'.","type":"System.Management.Automation.ParameterBindingException"}}}}"#;
        assert_eq!(
            error_text(body).unwrap(),
            "ParameterBindingException: A parameter cannot be found that matches parameter name 'Typ'."
        );
        let body = br#"{"error":{"code":"Unauthorized","message":"User is not allowed to call Get-Mailbox"}}"#;
        assert_eq!(
            error_text(body).unwrap(),
            "Unauthorized: User is not allowed to call Get-Mailbox"
        );
        assert_eq!(
            error_text(&[0, 0, 0, 0]).unwrap(),
            "Exchange sent no error text"
        );
        assert_eq!(error_text(b""), None);
    }
}

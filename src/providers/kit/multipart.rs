//! `multipart/form-data` bodies (RFC 7578), built in memory so that a request carrying one can
//! be sent again by the retry loop like any other body. Service desks take file uploads this
//! way (Jira's `file` parts, ConnectWise's `/system/documents`, Freshservice's
//! `attachments[]`).
//!
//! Field and file names are written as browsers write them (WHATWG HTML's form encoding): in
//! a quoted string, with `"`, CR and LF percent-encoded, everything else as UTF-8. The boundary
//! is random and checked against every part, so no content can end a part early.

use rand::Rng;
use reqwest::header::HeaderValue;

use super::http::Request;

/// One part of a form.
#[derive(Debug, Clone)]
struct Part {
    name: String,
    file: Option<(String, String)>,
    bytes: Vec<u8>,
}

/// A `multipart/form-data` body under construction.
#[derive(Debug, Clone, Default)]
pub struct Form {
    parts: Vec<Part>,
}

impl Form {
    pub fn new() -> Form {
        Form::default()
    }

    /// A plain field.
    pub fn text(mut self, name: &str, value: &str) -> Form {
        self.parts.push(Part {
            name: name.into(),
            file: None,
            bytes: value.as_bytes().to_vec(),
        });
        self
    }

    /// A file field: its name, the file's name and media type, its bytes.
    pub fn file(mut self, name: &str, filename: &str, content_type: &str, bytes: &[u8]) -> Form {
        self.parts.push(Part {
            name: name.into(),
            file: Some((filename.into(), content_type.into())),
            bytes: bytes.to_vec(),
        });
        self
    }

    /// The `Content-Type` header (with its boundary) and the body.
    pub fn finish(self) -> (HeaderValue, Vec<u8>) {
        let boundary = loop {
            let b = format!("offboard-{:032x}", rand::thread_rng().r#gen::<u128>());
            if !self.parts.iter().any(|p| contains(&p.bytes, b.as_bytes())) {
                break b;
            }
        };
        let mut body = Vec::new();
        for p in &self.parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            let mut disposition = format!("form-data; name=\"{}\"", escape(&p.name));
            if let Some((filename, _)) = &p.file {
                disposition.push_str(&format!("; filename=\"{}\"", escape(filename)));
            }
            body.extend_from_slice(format!("Content-Disposition: {disposition}\r\n").as_bytes());
            if let Some((_, ct)) = &p.file {
                body.extend_from_slice(format!("Content-Type: {}\r\n", one_line(ct)).as_bytes());
            }
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(&p.bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let ct = HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
            .expect("the boundary is ASCII");
        (ct, body)
    }
}

impl Request {
    /// This form as the body.
    pub fn multipart(self, form: Form) -> Request {
        let (ct, body) = form.finish();
        self.body(body, ct)
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A name inside a quoted string: `"`, CR and LF percent-encoded.
fn escape(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A media type on one header line.
fn one_line(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_has_each_part_between_boundaries() {
        let (ct, body) = Form::new()
            .text("recordType", "Ticket")
            .file("file", "a\"b\r\n.json", "application/json", b"{\"x\":1}")
            .finish();
        let ct = ct.to_str().unwrap();
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"recordType\"\r\n\r\nTicket\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a%22b%0D%0A.json\"\r\n\
                 Content-Type: application/json\r\n\r\n{{\"x\":1}}\r\n--{boundary}--\r\n"
            )
        );
    }

    #[test]
    fn the_boundary_never_occurs_in_a_part() {
        let (ct, body) = Form::new()
            .file("file", "f", "text/plain", b"--offboard-")
            .finish();
        let b = ct
            .to_str()
            .unwrap()
            .split("boundary=")
            .nth(1)
            .unwrap()
            .to_string();
        assert_eq!(
            String::from_utf8(body).unwrap().matches(&b).count(),
            2,
            "opening and closing delimiters only"
        );
    }
}

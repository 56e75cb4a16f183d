//! One departure, end to end, against real servers: Active Directory (Samba AD DC), OpenLDAP
//! (slapd with ppolicy), SCIM (scim2-server) and a secrets vault (OpenBao), plus a manual step:
//! `offboard start --non-interactive`, then `confirm`, then the evidence verified by OpenSSH's
//! `ssh-keygen`, then drift found by `verify`.

use crate::common;

use std::process::Command;

use common::servers::RealServer;
use serde_json::{Value, json};

const SCIM_TOKEN: &str = "e2e-scim-token-4c1d";
const BAO_ROOT: &str = "e2e-bao-root-77aa";
/// The directories' admin password, as set by tests/servers/start-{samba-ad,openldap}.sh.
const DIR_ADMIN_PW: &str = "Passw0rd!Admin";

/// Apply an LDIF change as the directory's admin, over verified LDAPS.
fn ldapmodify(url: &str, ca: &std::path::Path, bind_dn: &str, ldif: &str) {
    use std::io::Write;
    let mut child = Command::new("ldapmodify")
        .args(["-x", "-H", url, "-D", bind_dn, "-w", DIR_ADMIN_PW])
        .env("LDAPTLS_CACERT", ca)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ldif.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ldapmodify {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Read one attribute of one entry as the admin.
fn ldap_attr(
    url: &str,
    ca: &std::path::Path,
    bind_dn: &str,
    base: &str,
    filter: &str,
    attr: &str,
) -> String {
    let out = Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-H",
            url,
            "-D",
            bind_dn,
            "-w",
            DIR_ADMIN_PW,
            "-b",
            base,
            filter,
            attr,
        ])
        .env("LDAPTLS_CACERT", ca)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ldapsearch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{attr}: ")).map(str::to_string))
        .unwrap_or_default()
}

/// The value AD wants in `unicodePwd`: the quoted password in UTF-16LE, base64.
fn unicode_pwd(pw: &str) -> String {
    let bytes: Vec<u8> = format!("\"{pw}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let out = Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut out = out;
    out.stdin.take().unwrap().write_all(&bytes).unwrap();
    String::from_utf8(out.wait_with_output().unwrap().stdout).unwrap()
}

struct Http {
    client: reqwest::Client,
}

impl Http {
    async fn call(
        &self,
        method: &str,
        url: &str,
        auth: (&str, &str),
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .client
            .request(method.parse().unwrap(), url)
            .header(auth.0, auth.1);
        if let Some(b) = body {
            r = r.header("content-type", "application/json").json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

fn offboard(state: &std::path::Path, dir: &std::path::Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("offboard"));
    c.current_dir(dir)
        .env("OFFBOARD_STATE_DIR", state)
        .env("OFFBOARD_ACTOR", "e2e@corp.example")
        .env("NO_COLOR", "1")
        .env("E2E_SCIM_TOKEN", SCIM_TOKEN)
        .env("E2E_BAO_TOKEN", BAO_ROOT)
        .env("E2E_DIR_PW", DIR_ADMIN_PW);
    c
}

#[test]
fn a_departure_across_real_servers_with_a_manual_step_and_ssh_keygen_verification() {
    let Some(scim) = RealServer::scim(SCIM_TOKEN) else {
        return;
    };
    let Some(bao) = RealServer::openbao(BAO_ROOT, false) else {
        return;
    };
    let Some(samba) = RealServer::samba() else {
        return;
    };
    let Some(slapd) = RealServer::openldap() else {
        return;
    };
    let ad_url = "ldaps://127.0.0.1";
    let ad_admin = "Administrator@corp.test";
    let ol_url = format!("ldaps://127.0.0.1:{}", slapd.port + 1);
    let ol_admin = "cn=admin,dc=corp,dc=test";

    // Alice in AD (enabled, with a password) and in OpenLDAP.
    let alice_ad = "CN=Alice E2E,CN=Users,DC=corp,DC=test";
    ldapmodify(
        ad_url,
        &samba.ca(),
        ad_admin,
        &format!(
            "dn: {alice_ad}\nchangetype: add\nobjectClass: user\nsAMAccountName: alice\nuserPrincipalName: alice@corp.test\n\n\
             dn: {alice_ad}\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: {}\n-\n\n\
             dn: {alice_ad}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 512\n-\n",
            unicode_pwd("Al1ce!E2E-pw")
        ),
    );
    ldapmodify(
        &ol_url,
        &slapd.ca(),
        ol_admin,
        "dn: uid=alice,ou=people,dc=corp,dc=test\nchangetype: add\nobjectClass: inetOrgPerson\nuid: alice\ncn: alice\nsn: E2E\nmail: alice@corp.test\nuserPassword: alice-ol-pw\n",
    );
    let scim_url = format!("http://127.0.0.1:{}/v2", scim.port);
    let bao_url = format!("http://127.0.0.1:{}", bao.port);

    // The person exists everywhere, with live access.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = Http {
        client: reqwest::Client::new(),
    };
    let bearer = format!("Bearer {SCIM_TOKEN}");
    let scim_auth = ("authorization", bearer.as_str());
    let bao_auth = ("x-vault-token", BAO_ROOT);
    let (scim_id, alice_token) = rt.block_on(async {
        let (s, v) = http
            .call(
                "POST",
                &format!("{scim_url}/Users"),
                scim_auth,
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": "alice@corp.example",
                    "active": true,
                })),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let v1 = |p: &str| format!("{bao_url}/v1/{p}");
        for (m, p, b) in [
            ("POST", "sys/auth/userpass", json!({"type": "userpass"})),
            (
                "PUT",
                "sys/policies/acl/team",
                json!({"policy": "path \"secret/data/team/*\" { capabilities = [\"read\"] }"}),
            ),
            (
                "POST",
                "auth/userpass/users/alice",
                json!({"password": "alice-pw", "token_policies": "team"}),
            ),
            (
                "POST",
                "secret/data/team/db",
                json!({"data": {"password": "known-to-alice"}}),
            ),
        ] {
            let (s, v) = http.call(m, &v1(p), bao_auth, Some(b)).await;
            assert!((200..300).contains(&s), "{m} {p}: {s} {v}");
        }
        let (s, v) = http
            .call(
                "POST",
                &v1("auth/userpass/login/alice"),
                ("x-ignore", ""),
                Some(json!({"password": "alice-pw"})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        (
            v["id"].as_str().map(str::to_string).unwrap_or_default(),
            v["auth"]["client_token"].as_str().unwrap().to_string(),
        )
    });
    let _ = scim_id;

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::write(
        dir.path().join("offboard.toml"),
        format!(
            r#"
[runbook]
name = "E2E leaver"

[systems.ad]
kind = "ldap"
flavor = "active_directory"
base_url = "{ad_url}"
ca_file = "{ad_ca}"
bind_dn = "{ad_admin}"
bind_password = {{ env = "E2E_DIR_PW" }}
base_dn = "DC=corp,DC=test"
user = "{{{{ user.id }}}}@corp.test"

[systems.ldap]
kind = "ldap"
flavor = "openldap"
base_url = "{ol_url}"
ca_file = "{ol_ca}"
bind_dn = "{ol_admin}"
bind_password = {{ env = "E2E_DIR_PW" }}
base_dn = "dc=corp,dc=test"
user = "{{{{ user.id }}}}@corp.test"

[[step]]
id = "ad-disable"
lane = "it"
system = "ad"
action = "disable_account"

[[step]]
id = "ldap-lock"
lane = "it"
system = "ldap"
action = "lock_account"

[systems.app]
kind = "scim"
base_url = "{scim_url}"
token = {{ env = "E2E_SCIM_TOKEN" }}
user = "{{{{ user.id }}}}@corp.example"

[systems.vault]
kind = "vault"
base_url = "{bao_url}"
token = {{ env = "E2E_BAO_TOKEN" }}

[[step]]
id = "app-deactivate"
lane = "saas"
system = "app"
action = "deactivate_user"

[[step]]
id = "vault-tokens"
lane = "security"
system = "vault"
action = "revoke_tokens"

[[step]]
id = "vault-entity"
lane = "security"
system = "vault"
action = "disable_entity"
after = ["vault-tokens"]

[[step]]
id = "vault-rotate"
lane = "security"
system = "vault"
action = "rotate_secret"
params = {{ paths = ["team/db"] }}
phase = "recover"

[[step]]
id = "laptop"
lane = "facilities"
manual = "Collect the laptop of {{{{ user.id }}}}"
fields = ["tracking_number"]
owner = "facilities@corp.example"
"#,
            ad_ca = samba.ca().display(),
            ol_ca = slapd.ca().display(),
        ),
    )
    .unwrap();

    let out = offboard(&state, dir.path())
        .args(["--json", "start", "alice", "--non-interactive"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = v["departure"].as_str().unwrap().to_string();
    for s in v["steps"].as_array().unwrap() {
        let want = if s["id"] == "laptop" {
            "pending"
        } else {
            "done"
        };
        assert_eq!(s["status"], want, "{s}\n{stderr}");
    }

    // The live systems agree.
    rt.block_on(async {
        let (_, list) = http
            .call(
                "GET",
                &format!("{scim_url}/Users?filter=userName%20eq%20%22alice%40corp.example%22"),
                scim_auth,
                None,
            )
            .await;
        assert_eq!(list["Resources"][0]["active"], false, "{list}");
        let (s, _) = http
            .call(
                "GET",
                &format!("{bao_url}/v1/auth/token/lookup-self"),
                ("x-vault-token", &alice_token),
                None,
            )
            .await;
        assert_eq!(s, 403, "alice's old vault token still works");
        let (_, meta) = http
            .call(
                "GET",
                &format!("{bao_url}/v1/secret/metadata/team/db"),
                bao_auth,
                None,
            )
            .await;
        assert_eq!(meta["data"]["current_version"], 2, "{meta}");
    });
    let uac: u32 = ldap_attr(
        ad_url,
        &samba.ca(),
        ad_admin,
        "DC=corp,DC=test",
        "(sAMAccountName=alice)",
        "userAccountControl",
    )
    .parse()
    .unwrap();
    assert_eq!(uac & 2, 2, "AD account not disabled: {uac}");
    let locked = ldap_attr(
        &ol_url,
        &slapd.ca(),
        ol_admin,
        "dc=corp,dc=test",
        "(uid=alice)",
        "pwdAccountLockedTime",
    );
    assert_eq!(locked, "000001010000Z");
    // No secret value reached the journal or the evidence.
    let dep = state.join("departures").join(&id);
    for f in std::fs::read_dir(&dep).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap_or_default();
        for secret in [
            SCIM_TOKEN,
            BAO_ROOT,
            DIR_ADMIN_PW,
            "known-to-alice",
            &alice_token,
        ] {
            assert!(!text.contains(secret), "a secret reached the state dir");
        }
    }

    // The facilities team confirms the laptop later.
    let out = offboard(&state, dir.path())
        .args([
            "confirm",
            &id,
            "laptop",
            "--field",
            "tracking_number=1Z-E2E",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = offboard(&state, dir.path())
        .args(["status", &id])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // An auditor with nothing but OpenSSH accepts the evidence.
    let keys = offboard(&state, dir.path())
        .args(["-q", "--json", "keys", "show"])
        .output()
        .unwrap();
    let keys: Value = serde_json::from_slice(&keys.stdout).unwrap();
    let signers = dir.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!("{}\n", keys["allowed_signers"].as_str().unwrap()),
    )
    .unwrap();
    let evidence = dep.join(format!("{id}.json"));
    let ok = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&signers)
        .args(["-I", "offboard", "-n", "offboard-evidence", "-s"])
        .arg(dep.join(format!("{id}.json.sig")))
        .stdin(std::fs::File::open(&evidence).unwrap())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = offboard(&state, dir.path())
        .args(["evidence", "verify", "--allowed-signers"])
        .arg(&signers)
        .arg(&evidence)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Someone re-enables the SCIM account behind the tool's back: verify finds it (exit 4).
    rt.block_on(async {
        let (_, list) = http
            .call(
                "GET",
                &format!("{scim_url}/Users?filter=userName%20eq%20%22alice%40corp.example%22"),
                scim_auth,
                None,
            )
            .await;
        let uid = list["Resources"][0]["id"].as_str().unwrap().to_string();
        let (s, v) = http
            .call(
                "PATCH",
                &format!("{scim_url}/Users/{uid}"),
                scim_auth,
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": true}],
                })),
            )
            .await;
        assert!((200..300).contains(&s), "{s} {v}");
    });
    let out = offboard(&state, dir.path())
        .args(["--json", "verify", &id])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["drift"], json!(["app-deactivate"]));
}
